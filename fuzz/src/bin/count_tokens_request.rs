//! AFL entry point for [`switchyard_fuzz::count_tokens_request`].

fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::count_tokens_request(data));
}
