//! AFL entry point for [`switchyard_fuzz::completions_request`].

fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::completions_request(data));
}
