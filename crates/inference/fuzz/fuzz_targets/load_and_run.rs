//! Fuzz target: arbitrary bytes as an ONNX model must load, run and explain without panicking.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vigil_inference::fuzz_load(data);
});
