//! AFL entry point for [`switchyard_fuzz::sse`].

fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::sse(data));
}
