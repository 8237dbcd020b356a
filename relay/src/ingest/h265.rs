//! H.265 byte-format conversions, as [`super::h264`]'s: retina hands frames with each NAL
//! unit after its 4-byte length and the parameter sets in an `hvcC` record; the relay's
//! decoder and browsers want Annex B, the VPS, SPS and PPS before each keyframe, and
//! browsers that take H.265 want it as RFC 7798 RTP. Plain functions over bytes.

use super::h264::{START_CODE, length_prefixed_to_annex_b};

/// NAL unit types left out: the parameter sets (VPS 32, SPS 33, PPS 34), which the relay
/// puts before each keyframe itself from what retina last read (retina puts them in frames
/// as well, as it sees fit), access unit delimiters (35) and SEI (39, 40), which decoding
/// does without.
const DROPPED_NAL_TYPES: [u8; 6] = [32, 33, 34, 35, 39, 40];

/// Appends the NAL units of an HVCC frame to `out` in Annex B form, without parameter sets,
/// access unit delimiters and SEI.
pub fn hvcc_to_annex_b(frame: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    length_prefixed_to_annex_b(frame, out, |header| {
        !DROPPED_NAL_TYPES.contains(&((header >> 1) & 0x3f))
    })
}

/// Cuts an Annex B frame into RTP payloads (RFC 7798: single NAL units, aggregation packets
/// for small ones such as the parameter sets, fragmentation units for large slices), for
/// browsers that take H.265. Done once per frame for every viewer.
pub fn rtp_payloads(annex_b: &bytes::Bytes) -> Result<Vec<bytes::Bytes>, &'static str> {
    use rtc::rtp::codec::h265::HevcPayloader;
    use rtc::rtp::packetizer::Payloader;
    HevcPayloader
        .payload(super::h264::MAX_RTP_PAYLOAD, annex_b)
        .map_err(|_| "cannot packetize the frame")
}

/// Whether an HVCC frame is a picture decoding can start at: an IRAP (BLA 16–18, IDR 19–20,
/// CRA 21, reserved 22–23). Retina counts IDR pictures only, but cameras with an open group
/// of pictures (x265's default) make one IDR and then CRAs, and the agent's cached group
/// starts at whichever came last.
pub fn is_random_access(frame: &[u8]) -> bool {
    let mut rest = frame;
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        let Some(unit) = tail.get(..len) else {
            return false;
        };
        if let Some(header) = unit.first()
            && (16..=23).contains(&((header >> 1) & 0x3f))
        {
            return true;
        }
        rest = &tail[len..];
    }
    false
}

/// The parameter sets (VPS, SPS, PPS, in the record's order) of an
/// `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3.1), in Annex B form; `None` if
/// the record is malformed.
pub fn parameter_sets_from_hvcc(record: &[u8]) -> Option<Vec<u8>> {
    // 22 bytes of profile, level and format fields, then the number of arrays.
    let (&arrays, mut rest) = record.get(22..)?.split_first()?;
    let mut out = Vec::new();
    for _ in 0..arrays {
        // Each array: completeness and NAL unit type in one byte, then its units.
        let (_, tail) = rest.split_first()?;
        let (count, mut tail) = tail.split_first_chunk::<2>()?;
        for _ in 0..u16::from_be_bytes(*count) {
            let (len, units) = tail.split_first_chunk::<2>()?;
            let len = usize::from(u16::from_be_bytes(*len));
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(units.get(..len)?);
            tail = &units[len..];
        }
        rest = tail;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hvcc_frames_become_annex_b_without_parameter_sets_delimiters_and_sei() {
        // A VPS (32: 0x40), an access unit delimiter (35: 0x46), a prefix SEI (39: 0x4e), an
        // IDR slice (19: 0x26), a trailing slice (1: 0x02).
        let frame = [
            0, 0, 0, 3, 0x40, 0x01, 0x0c, 0, 0, 0, 3, 0x46, 0x01, 0x50, 0, 0, 0, 3, 0x4e, 0x01, 5,
            0, 0, 0, 3, 0x26, 0x01, 0xaf, 0, 0, 0, 2, 0x02, 0x01,
        ];
        let mut out = Vec::new();
        hvcc_to_annex_b(&frame, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x26, 0x01, 0xaf, 0, 0, 0, 1, 0x02, 0x01]);
        assert!(hvcc_to_annex_b(&[0, 0, 0, 9, 0x26], &mut Vec::new()).is_err());
    }

    #[test]
    fn frames_become_rfc_7798_payloads_that_put_the_units_back_together() {
        let (vps, sps, pps) = ([0x40, 0x01, 0x0c], [0x42, 0x01, 0x01], [0x44, 0x01, 0xc1]);
        let idr: Vec<u8> = [0x26, 0x01]
            .into_iter()
            .chain((0..3000).map(|i| (i % 251) as u8 + 1))
            .collect();
        let frame: Vec<u8> = [&vps[..], &sps, &pps, &idr]
            .iter()
            .flat_map(|u| START_CODE.iter().chain(u.iter()).copied())
            .collect();
        let payloads = rtp_payloads(&bytes::Bytes::from(frame)).unwrap();
        assert!(
            payloads
                .iter()
                .all(|p| p.len() <= super::super::h264::MAX_RTP_PAYLOAD)
        );
        // Aggregation packets (48), fragmentation units (49) and single units, undone.
        let mut units: Vec<Vec<u8>> = Vec::new();
        for p in &payloads {
            match (p[0] >> 1) & 0x3f {
                48 => {
                    let mut rest = &p[2..];
                    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
                        let len = usize::from(u16::from_be_bytes(*len));
                        units.push(tail[..len].to_vec());
                        rest = &tail[len..];
                    }
                }
                49 => {
                    if p[2] & 0x80 != 0 {
                        units.push(vec![(p[0] & 0x81) | ((p[2] & 0x3f) << 1), p[1]]);
                    }
                    units.last_mut().unwrap().extend_from_slice(&p[3..]);
                }
                _ => units.push(p.to_vec()),
            }
        }
        assert_eq!(units, [vps.to_vec(), sps.to_vec(), pps.to_vec(), idr]);
        assert!(
            payloads.len() >= 4,
            "the slice in fragments: {}",
            payloads.len()
        );
    }

    #[test]
    fn irap_pictures_are_where_decoding_starts_cra_included() {
        let unit = |header: u8| [&[0, 0, 0, 3][..], &[header, 0x01, 0xaf]].concat();
        // IDR_W_RADL (19), CRA (21), BLA_W_LP (16): yes; TRAIL_R (1), RASL (9): no.
        for (header, random_access) in [
            (0x26, true),
            (0x2a, true),
            (0x20, true),
            (0x02, false),
            (0x12, false),
        ] {
            assert_eq!(
                is_random_access(&unit(header)),
                random_access,
                "{header:#x}"
            );
        }
        // After a prefix SEI (39), and a frame cut short.
        assert!(is_random_access(&[unit(0x4e), unit(0x2a)].concat()));
        assert!(!is_random_access(&[0, 0, 0, 9, 0x2a, 0x01]));
    }

    #[test]
    fn parameter_sets_come_out_of_the_hvcc_record() {
        let mut record = vec![1; 22];
        // Three arrays: a VPS of 2 bytes, an SPS of 3, a PPS of 1.
        record.extend_from_slice(&[3, 0x20, 0, 1, 0, 2, 0x40, 0x01]);
        record.extend_from_slice(&[0x21, 0, 1, 0, 3, 0x42, 0x01, 0x01]);
        record.extend_from_slice(&[0x22, 0, 1, 0, 1, 0x44]);
        assert_eq!(
            parameter_sets_from_hvcc(&record).unwrap(),
            [
                0, 0, 0, 1, 0x40, 0x01, 0, 0, 0, 1, 0x42, 0x01, 0x01, 0, 0, 0, 1, 0x44
            ]
        );
        assert!(parameter_sets_from_hvcc(&record[..30]).is_none());
        assert!(parameter_sets_from_hvcc(&record[..10]).is_none());
    }
}
