//! AFL entry point for [`switchyard_fuzz::embeddings_request`].

fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::embeddings_request(data));
}
