//! AFL entry point for [`switchyard_fuzz::codec_openai`].

fn main() {
    afl::fuzz!(|data: &[u8]| switchyard_fuzz::codec_openai(data));
}
