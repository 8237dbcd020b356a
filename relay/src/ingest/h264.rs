//! H.264 byte-format conversions: retina hands frames in AVCC form (each NAL unit prefixed by
//! its 4-byte length) and parameter sets in an `avcC` record; browsers want Annex B (each NAL
//! unit after a start code). Plain functions over bytes.

pub(super) const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// NAL unit types left out on the way to browsers: SEI (6), which decoders do not need and
/// some browsers stumble on (x264 puts its whole settings string in one), and access unit
/// delimiters (9), which WebRTC packetization does without.
const DROPPED_NAL_TYPES: [u8; 2] = [6, 9];

/// The largest RTP packet the relay sends: fits any path's MTU, tunnels included (as
/// browsers' own senders assume).
const RTP_PACKET_BYTES: usize = 1200;
const RTP_HEADER_BYTES: usize = 12;
/// The largest RTP payload the relay sends, of any codec.
pub const MAX_RTP_PAYLOAD: usize = RTP_PACKET_BYTES - RTP_HEADER_BYTES;

/// Cuts an Annex B frame into RTP payloads (RFC 6184: single NAL units, STAP-A for the
/// parameter sets, FU-A for large slices). Done once per frame for every viewer.
pub fn rtp_payloads(annex_b: &bytes::Bytes) -> Result<Vec<bytes::Bytes>, &'static str> {
    use rtc::rtp::codec::h264::H264Payloader;
    use rtc::rtp::packetizer::Payloader;
    H264Payloader::default()
        .payload(MAX_RTP_PAYLOAD, annex_b)
        .map_err(|_| "cannot packetize the frame")
}

/// Appends the NAL units of an AVCC frame to `out` in Annex B form, without SEI and access
/// unit delimiters.
pub fn avcc_to_annex_b(avcc: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    length_prefixed_to_annex_b(avcc, out, |header| {
        !DROPPED_NAL_TYPES.contains(&(header & 0x1f))
    })
}

/// An Annex B frame without SEI and access unit delimiters, as [`avcc_to_annex_b`] leaves
/// them out of cameras' frames: for the relay's own encoder's (x264 writes its settings in an
/// SEI of its first keyframe).
pub fn annex_b_without_sei(annex_b: &[u8]) -> Vec<u8> {
    let starts: Vec<usize> = annex_b
        .windows(3)
        .enumerate()
        .filter(|(_, w)| *w == [0, 0, 1])
        .map(|(i, _)| i + 3)
        .collect();
    let mut out = Vec::with_capacity(annex_b.len());
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(annex_b.len(), |next| next - 3);
        let mut unit = &annex_b[start..end];
        // A 4-byte start code's leading zero belongs to no unit.
        while let [head @ .., 0] = unit {
            unit = head;
        }
        if unit
            .first()
            .is_some_and(|h| !DROPPED_NAL_TYPES.contains(&(h & 0x1f)))
        {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(unit);
        }
    }
    out
}

/// Appends the NAL units of a frame whose units each follow their 4-byte length (H.264's
/// AVCC, H.265's HVCC) to `out` in Annex B form, those whose first header byte `keep` takes.
pub fn length_prefixed_to_annex_b(
    mut frame: &[u8],
    out: &mut Vec<u8>,
    keep: impl Fn(u8) -> bool,
) -> Result<(), &'static str> {
    while !frame.is_empty() {
        let Some((len, rest)) = frame.split_first_chunk::<4>() else {
            return Err("truncated NAL length");
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len == 0 || len > rest.len() {
            return Err("NAL length beyond the frame");
        }
        let nal = &rest[..len];
        if keep(nal[0]) {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
        frame = &rest[len..];
    }
    Ok(())
}

/// The SPS and PPS of an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.2.4.1), in
/// Annex B form; `None` if the record is malformed.
pub fn parameter_sets_from_avcc(record: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let sps_count = usize::from(*record.get(5)? & 0x1f);
    let mut rest = record.get(6..)?;
    for table in 0..2 {
        let count = if table == 0 {
            sps_count
        } else {
            let (&n, tail) = rest.split_first()?;
            rest = tail;
            usize::from(n)
        };
        for _ in 0..count {
            let (len, tail) = rest.split_first_chunk::<2>()?;
            let len = usize::from(u16::from_be_bytes(*len));
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(tail.get(..len)?);
            rest = &tail[len..];
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoders_sei_and_delimiters_are_left_out_of_its_annex_b_frames() {
        // An access unit delimiter (9), SPS (7), PPS (8) after a 3-byte start code, an SEI
        // (6), an IDR slice (5) ending in a zero byte before the next 4-byte start code.
        let frame = [
            &[0, 0, 0, 1, 0x09, 0xf0][..],
            &[0, 0, 0, 1, 0x67, 0x42],
            &[0, 0, 1, 0x68, 0xce],
            &[0, 0, 0, 1, 0x06, 5, 5],
            &[0, 0, 0, 1, 0x65, 1, 2, 0],
            &[0, 0, 0, 1, 0x65, 3],
        ]
        .concat();
        assert_eq!(
            annex_b_without_sei(&frame),
            [
                &[0, 0, 0, 1, 0x67, 0x42][..],
                &[0, 0, 0, 1, 0x68, 0xce],
                &[0, 0, 0, 1, 0x65, 1, 2],
                &[0, 0, 0, 1, 0x65, 3],
            ]
            .concat()
        );
        assert!(annex_b_without_sei(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn avcc_frames_become_annex_b() {
        let avcc = [0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 1, 0x41];
        let mut out = Vec::new();
        avcc_to_annex_b(&avcc, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x65, 0xaa, 0, 0, 0, 1, 0x41]);
        // SEI and access unit delimiters stay behind.
        let mut out = Vec::new();
        avcc_to_annex_b(
            &[0, 0, 0, 2, 0x06, 5, 0, 0, 0, 1, 0x09, 0, 0, 0, 1, 0x65],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x65]);
        for bad in [&[0, 0, 0][..], &[0, 0, 0, 9, 1], &[0, 0, 0, 0]] {
            assert!(avcc_to_annex_b(bad, &mut Vec::new()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parameter_sets_come_out_of_the_avcc_record() {
        // version 1, profile 42, compat, level 1f, length size 4, 1 SPS of 3 bytes, 1 PPS of 2.
        let record = [
            1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 3, 0x67, 0x42, 0x1f, 1, 0, 2, 0x68, 0xce,
        ];
        assert_eq!(
            parameter_sets_from_avcc(&record).unwrap(),
            [0, 0, 0, 1, 0x67, 0x42, 0x1f, 0, 0, 0, 1, 0x68, 0xce]
        );
        assert!(parameter_sets_from_avcc(&record[..10]).is_none());
        assert!(parameter_sets_from_avcc(&[]).is_none());
    }
}
