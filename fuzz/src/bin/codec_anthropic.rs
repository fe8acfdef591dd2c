//! AFL entry point for [`switchyard_fuzz::codec_anthropic`].

fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::codec_anthropic(data));
}
