//! Compressed responses of the mock: which coding to use for a request (the `--compress` flag
//! against the client's `Accept-Encoding`), and a per-response encoder that flushes after each
//! body frame, so compressed SSE events still leave one by one on their schedule.

use std::io::Write;

use bytes::Bytes;
use hyper::header::HeaderMap;

/// `--compress`: when the mock compresses its chat answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compress {
    /// Never (the default).
    #[default]
    Off,
    /// The first of gzip, br, zstd, deflate, in the client's order, that its Accept-Encoding allows.
    Auto,
    /// gzip, when the client accepts it.
    Gzip,
    /// deflate (zlib-wrapped), when the client accepts it.
    Deflate,
    /// brotli, when the client accepts it.
    Br,
    /// zstd, when the client accepts it.
    Zstd,
}

/// A coding the mock can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
    Br,
    Zstd,
}

impl Coding {
    pub(crate) fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Br => "br",
            Coding::Zstd => "zstd",
        }
    }

    fn from_token(t: &str) -> Option<Coding> {
        Some(match t {
            "gzip" | "x-gzip" => Coding::Gzip,
            "deflate" => Coding::Deflate,
            "br" => Coding::Br,
            "zstd" => Coding::Zstd,
            _ => return None,
        })
    }
}

impl Compress {
    /// The coding for a request with these headers, if any: the configured one only when the
    /// client's `Accept-Encoding` lists it (without `q=0`), as a real server does.
    pub(crate) fn choose(self, headers: &HeaderMap) -> Option<Coding> {
        let wanted = match self {
            Compress::Off => return None,
            Compress::Auto => None,
            Compress::Gzip => Some(Coding::Gzip),
            Compress::Deflate => Some(Coding::Deflate),
            Compress::Br => Some(Coding::Br),
            Compress::Zstd => Some(Coding::Zstd),
        };
        let accept = headers.get(hyper::header::ACCEPT_ENCODING)?.to_str().ok()?;
        accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let token = parts.next()?.trim().to_ascii_lowercase();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f64>().ok())
                        == Some(0.0)
                });
                (!refused).then(|| Coding::from_token(&token)).flatten()
            })
            .find(|c| wanted.is_none_or(|w| w == *c))
    }
}

/// One response's encoder; [`Encoder::frame`] compresses a frame and flushes it.
pub(crate) enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Deflate(flate2::write::ZlibEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    /// The encoder failed (it cannot, writing to memory); the body ends with an error.
    Broken,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encoder")
    }
}

impl Encoder {
    /// Fast settings: the mock shares the CPU with the generator in benchmarks.
    pub(crate) fn new(coding: Coding) -> Encoder {
        let fast = flate2::Compression::fast();
        match coding {
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(Vec::new(), fast)),
            Coding::Deflate => Encoder::Deflate(flate2::write::ZlibEncoder::new(Vec::new(), fast)),
            Coding::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                1,
                18,
            ))),
            Coding::Zstd => match zstd::stream::write::Encoder::new(Vec::new(), 1) {
                Ok(e) => Encoder::Zstd(e),
                Err(_) => Encoder::Broken,
            },
        }
    }

    /// `data` compressed and flushed, so the client can decode it at once; at `last`, the
    /// stream's trailer too.
    pub(crate) fn frame(&mut self, data: &[u8], last: bool) -> std::io::Result<Bytes> {
        let out = match std::mem::replace(self, Encoder::Broken) {
            Encoder::Gzip(mut e) if last => {
                e.write_all(data)?;
                e.finish()?
            }
            Encoder::Deflate(mut e) if last => {
                e.write_all(data)?;
                e.finish()?
            }
            Encoder::Br(mut e) if last => {
                e.write_all(data)?;
                e.flush()?;
                e.into_inner()
            }
            Encoder::Zstd(mut e) if last => {
                e.write_all(data)?;
                e.finish()?
            }
            mut enc => {
                let out = match &mut enc {
                    Encoder::Gzip(e) => flush_take(e, data, |e| e.get_mut())?,
                    Encoder::Deflate(e) => flush_take(e, data, |e| e.get_mut())?,
                    Encoder::Br(e) => flush_take(e.as_mut(), data, |e| e.get_mut())?,
                    Encoder::Zstd(e) => flush_take(e, data, |e| e.get_mut())?,
                    Encoder::Broken => return Err(std::io::Error::other("mock: encoder failed")),
                };
                *self = enc;
                out
            }
        };
        Ok(out.into())
    }
}

fn flush_take<W: Write>(
    w: &mut W,
    data: &[u8],
    inner: impl Fn(&mut W) -> &mut Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    w.write_all(data)?;
    w.flush()?;
    Ok(std::mem::take(inner(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(hyper::header::ACCEPT_ENCODING, v.parse().unwrap());
        h
    }

    #[test]
    fn honours_accept_encoding() {
        let h = accept("gzip, deflate");
        assert_eq!(Compress::Auto.choose(&h), Some(Coding::Gzip));
        assert_eq!(Compress::Deflate.choose(&h), Some(Coding::Deflate));
        assert_eq!(Compress::Zstd.choose(&h), None);
        assert_eq!(Compress::Off.choose(&h), None);
        assert_eq!(
            Compress::Auto.choose(&accept("br;q=0, zstd")),
            Some(Coding::Zstd)
        );
        assert_eq!(Compress::Auto.choose(&accept("identity")), None);
        assert_eq!(Compress::Gzip.choose(&HeaderMap::new()), None);
    }
}
