//! AFL entry point for [`switchyard_fuzz::responses_request`].

fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::responses_request(data));
}
