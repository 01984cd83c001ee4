//! OpenAI's text to speech, `POST /audio/speech`: 20 ms of silence in the `response_format`
//! asked for (mp3 by default), with its content type: `audio/mpeg`, `audio/opus` (Ogg),
//! `audio/aac` (ADTS), `audio/flac`, `audio/wav`, `audio/pcm` (16-bit mono at 24 kHz, as
//! OpenAI's raw PCM). Each is well-formed enough for a player to recognise its container.

use super::super::{respond, Incoming};
use super::{body, refusal};
use axum::http::StatusCode;
use axum::response::Response;

/// The formats and their content types, in the order the API lists them.
const FORMATS: [(&str, &str); 6] = [
    ("mp3", "audio/mpeg"),
    ("opus", "audio/opus"),
    ("aac", "audio/aac"),
    ("flac", "audio/flac"),
    ("wav", "audio/wav"),
    ("pcm", "audio/pcm"),
];
/// PCM's sample rate, and the samples of 20 ms of it.
const RATE: u32 = 24_000;
const SAMPLES: usize = 480;

/// The answer to `POST /audio/speech`.
pub(super) fn answer(req: &Incoming) -> Response {
    let json = match body(req, &["model", "input", "voice"]) {
        Ok(json) => json,
        Err(refused) => return *refused,
    };
    let format = json
        .and_then(|j| j.get("response_format"))
        .and_then(|f| f.as_str())
        .unwrap_or("mp3");
    let Some((format, content_type)) = FORMATS.iter().find(|(f, _)| *f == format) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            &format!("Invalid value: '{format}'. Supported values are: 'mp3', 'opus', 'aac', 'flac', 'wav', and 'pcm'."),
            Some("response_format"),
            Some("invalid_value"),
        );
    };
    respond(StatusCode::OK, content_type, audio(format))
}

/// 20 ms of silence as `format`.
fn audio(format: &str) -> Vec<u8> {
    let pcm = vec![0u8; SAMPLES * 2];
    match format {
        "wav" => {
            let len = u32::try_from(pcm.len()).unwrap_or(0);
            let mut v = Vec::with_capacity(44 + pcm.len());
            v.extend_from_slice(b"RIFF");
            v.extend_from_slice(&(36 + len).to_le_bytes());
            v.extend_from_slice(b"WAVEfmt ");
            v.extend_from_slice(&16u32.to_le_bytes());
            v.extend_from_slice(&1u16.to_le_bytes()); // PCM
            v.extend_from_slice(&1u16.to_le_bytes()); // mono
            v.extend_from_slice(&RATE.to_le_bytes());
            v.extend_from_slice(&(RATE * 2).to_le_bytes()); // bytes per second
            v.extend_from_slice(&2u16.to_le_bytes()); // block align
            v.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
            v.extend_from_slice(b"data");
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(&pcm);
            v
        }
        "flac" => {
            // The marker and a last STREAMINFO block: 4096-sample blocks, 24 kHz, mono,
            // 16 bits, length and MD5 unknown (zero).
            let mut v = b"fLaC\x80\x00\x00\x22\x10\x00\x10\x00".to_vec();
            v.extend_from_slice(&[0; 6]);
            v.extend_from_slice(&[0x05, 0xdc, 0x00, 0xf0, 0, 0, 0, 0]);
            v.extend_from_slice(&[0; 16]);
            v
        }
        "opus" => ogg_page(&opus_head()),
        "aac" => {
            // One ADTS frame header (MPEG-4 AAC LC, 24 kHz, mono, no CRC) and no payload.
            let len: u16 = 7;
            vec![
                0xff,
                0xf1,
                0x58,
                0x40 | u8::try_from(len >> 11).unwrap_or(0),
                u8::try_from((len >> 3) & 0xff).unwrap_or(0),
                u8::try_from((len & 7) << 5).unwrap_or(0) | 0x1f,
                0xfc,
            ]
        }
        "pcm" => pcm,
        // mp3: an ID3v2.4 tag without frames, then one silent MPEG-1 Layer III frame
        // (128 kbit/s, 44.1 kHz, joint stereo: 417 bytes).
        _ => {
            let mut v = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64".to_vec();
            v.resize(10 + 417, 0);
            v
        }
    }
}

/// Opus's identification header: version 1, mono, 312 samples pre-skip, 24 kHz input.
fn opus_head() -> Vec<u8> {
    let mut v = b"OpusHead\x01\x01".to_vec();
    v.extend_from_slice(&312u16.to_le_bytes());
    v.extend_from_slice(&RATE.to_le_bytes());
    v.extend_from_slice(&[0, 0, 0]); // output gain, channel mapping family
    v
}

/// `packet` as the first page of an Ogg stream, with its CRC.
fn ogg_page(packet: &[u8]) -> Vec<u8> {
    let mut v = b"OggS\x00\x02".to_vec();
    v.extend_from_slice(&[0; 8]); // granule position
    v.extend_from_slice(&0x6d6f_636bu32.to_le_bytes()); // serial number
    v.extend_from_slice(&[0; 4]); // page sequence
    v.extend_from_slice(&[0; 4]); // CRC, filled in below
    v.push(1);
    v.push(u8::try_from(packet.len()).unwrap_or(u8::MAX));
    v.extend_from_slice(packet);
    let crc = v.iter().fold(0u32, |crc, &b| {
        (0..8).fold(crc ^ (u32::from(b) << 24), |c, _| {
            if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04c1_1db7
            } else {
                c << 1
            }
        })
    });
    v[22..26].copy_from_slice(&crc.to_le_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_starts_as_its_container_does() {
        for (format, magic) in [
            ("mp3", &b"ID3"[..]),
            ("opus", b"OggS"),
            ("aac", b"\xff\xf1"),
            ("flac", b"fLaC"),
            ("wav", b"RIFF"),
        ] {
            assert!(audio(format).starts_with(magic), "{format}");
        }
        let wav = audio("wav");
        assert_eq!(&wav[8..12], b"WAVE");
        assert_eq!(wav.len(), 44 + SAMPLES * 2);
        assert_eq!(audio("pcm").len(), SAMPLES * 2);
        assert_eq!(audio("flac").len(), 4 + 4 + 34);
        let opus = audio("opus");
        assert_eq!(&opus[28..36], b"OpusHead");
    }
}
