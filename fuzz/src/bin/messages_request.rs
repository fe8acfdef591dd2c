//! AFL entry point for [`switchyard_fuzz::messages_request`].

fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::messages_request(data));
}
