//! AFL entry point for [`switchyard_fuzz::chat_request`].

fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::chat_request(data));
}
