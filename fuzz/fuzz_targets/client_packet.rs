//! What a client can send: the connect request, then request headers and bodies of any
//! opcode. Decoding must return an error, never panic, whatever the bytes.
#![no_main]
use jute::request::Request;
use jute::{ConnectRequest, Jute, RequestHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ConnectRequest::decode(data);
    if data.len() >= 4 {
        // the opcode picks the body's record, as the server's read loop does
        let op = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        let _ = Request::decode(op, &data[4..]);
        let _ = RequestHeader::decode(&data[4..]);
    }
});
