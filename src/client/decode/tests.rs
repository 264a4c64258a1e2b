use super::*;
use std::io::Write;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn encode(encoding: Encoding, data: &[u8]) -> Vec<u8> {
    match encoding {
        Encoding::Gzip => gzip(data),
        Encoding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Encoding::Brotli => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 20);
                w.write_all(data).unwrap();
            }
            out
        }
        Encoding::Zstd => zstd::encode_all(data, 3).unwrap(),
    }
}

/// Feeds `compressed` split every `step` bytes; returns the decoded bytes.
fn decode_split(
    encoding: Encoding,
    compressed: &[u8],
    step: usize,
) -> Result<Vec<u8>, DecodeError> {
    let mut d = BodyDecoder::new(encoding)?;
    let mut out = Vec::new();
    for piece in compressed.chunks(step) {
        let _ = d.decode(Bytes::copy_from_slice(piece), |c| {
            out.extend_from_slice(c);
            ControlFlow::Continue(())
        })?;
    }
    let _ = d.finish(|c| {
        out.extend_from_slice(c);
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

const ALL: [Encoding; 4] = [
    Encoding::Gzip,
    Encoding::Deflate,
    Encoding::Brotli,
    Encoding::Zstd,
];

#[test]
fn every_encoding_decodes_at_any_split() {
    let text: Vec<u8> = (0..3000)
        .flat_map(|i| format!("data: {{\"i\":{i},\"t\":\"tok{}\"}}\n\n", i % 17).into_bytes())
        .collect();
    for enc in ALL {
        let c = encode(enc, &text);
        for step in [1, 7, 1000, c.len()] {
            assert_eq!(
                decode_split(enc, &c, step).unwrap(),
                text,
                "{enc:?} step {step}"
            );
        }
    }
}

#[test]
fn raw_deflate_is_accepted_too() {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b"data: [DONE]\n\n").unwrap();
    let c = e.finish().unwrap();
    assert_eq!(
        decode_split(Encoding::Deflate, &c, 1).unwrap(),
        b"data: [DONE]\n\n"
    );
}

#[test]
fn a_decompression_bomb_is_too_large_in_bounded_chunks() {
    let zeros = vec![0u8; (MAX_DECODED_BODY_BYTES + 1024 * 1024) as usize];
    for enc in [Encoding::Gzip, Encoding::Zstd] {
        let c = encode(enc, &zeros);
        assert!(c.len() < 1024 * 1024, "{}", c.len());
        let mut d = BodyDecoder::new(enc).unwrap();
        let mut biggest = 0;
        let r = d.decode(Bytes::from(c), |chunk| {
            biggest = biggest.max(chunk.len());
            ControlFlow::Continue(())
        });
        assert_eq!(
            r,
            Err(DecodeError::TooLarge {
                encoding: enc.as_str(),
                limit: MAX_DECODED_BODY_BYTES
            })
        );
        assert!(biggest <= OUT_CHUNK_BYTES);
    }
}

#[test]
fn a_huge_zstd_window_is_refused() {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    e.window_log(27).unwrap();
    e.long_distance_matching(true).unwrap();
    e.write_all(&vec![7u8; 1 << 20]).unwrap();
    let c = e.finish().unwrap();
    let err = decode_split(Encoding::Zstd, &c, 4096).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Corrupt {
                encoding: "zstd",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn garbage_never_panics() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        let garbage: Vec<u8> = (0..300)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        for enc in ALL {
            let _ = decode_split(enc, &garbage, 13);
        }
    }
}

#[test]
fn content_encoding_header() {
    let mut h = HeaderMap::new();
    assert_eq!(Encoding::from_header(&h), Ok(None));
    for (v, want) in [
        ("gzip", Some(Encoding::Gzip)),
        ("X-GZIP", Some(Encoding::Gzip)),
        ("deflate", Some(Encoding::Deflate)),
        ("br", Some(Encoding::Brotli)),
        (" zstd ", Some(Encoding::Zstd)),
        ("identity", None),
    ] {
        h.insert(CONTENT_ENCODING, v.parse().unwrap());
        assert_eq!(Encoding::from_header(&h), Ok(want), "{v}");
    }
    h.insert(CONTENT_ENCODING, "compress".parse().unwrap());
    let e = Encoding::from_header(&h).unwrap_err();
    assert_eq!(e.to_string(), "unsupported Content-Encoding: compress");
}
