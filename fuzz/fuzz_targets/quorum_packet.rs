//! What another server (or anyone reaching the quorum and election ports) can send: the
//! election handshake and notifications, and quorum packets in both directions, with the
//! proposal payloads and snapshot streams they carry.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zab::wire::{
    decode_election_frame, InitialMessage, Notification, Packet, ProposalData, RawPacket, Sender,
    SnapshotStream,
};

fuzz_target!(|data: &[u8]| {
    let _ = InitialMessage::decode_prefix(data);
    if let Ok(Some((frame, _))) = decode_election_frame(data) {
        let _ = Notification::decode(frame);
    }
    let _ = Notification::decode(data);
    if let Ok(Some((_raw, used))) = RawPacket::decode_prefix(data, 1 << 20) {
        assert!(
            used <= data.len(),
            "a frame cannot be longer than the input"
        );
    }
    let _ = Packet::decode(data, Sender::Leader);
    let _ = Packet::decode(data, Sender::Learner);
    let _ = ProposalData::decode(data);
    let _ = SnapshotStream::decode(data);
});
