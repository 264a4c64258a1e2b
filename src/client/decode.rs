//! Content-Encoding of a response body: which encodings the client asks for and accepts
//! (gzip, deflate, br, zstd), and their incremental decoding, frame by frame, so that each SSE
//! event is still timed when the bytes that complete it arrive.
//!
//! The server under test is an untrusted peer here: decoding never panics, the decoded size of
//! one response is capped ([`MAX_DECODED_BODY_BYTES`], against decompression bombs), output is
//! produced in bounded chunks, and the decoders' windows are bounded (gzip/deflate 32 KiB,
//! brotli at most 16 MiB by its format, zstd [`ZSTD_WINDOW_LOG_MAX`]).

use bytes::{Buf, Bytes};
use hyper::header::{HeaderMap, CONTENT_ENCODING};
use std::io::{self, BufRead, Read};
use std::ops::ControlFlow;

/// What the client sends as `Accept-Encoding` unless told otherwise: what Python's `requests`
/// (the seed's Locust client) sends.
pub const DEFAULT_ACCEPT_ENCODING: &str = crate::config::defaults::ACCEPT_ENCODING;

/// Most decoded bytes of one compressed response. A long completion of 100,000 tokens is about
/// 20 MB of SSE; far beyond that is a decompression bomb, and the request fails as `too_large`.
pub const MAX_DECODED_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Largest zstd window accepted (2^23 = 8 MiB, what zstd's own levels up to 19 use): the window
/// is the peer's claim, and it sizes the decoder's allocation.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Decoded bytes handed to the SSE parser at a time.
const OUT_CHUNK_BYTES: usize = 16 * 1024;

/// Input buffer of the brotli decoder.
const BROTLI_BUFFER_BYTES: usize = 4096;

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The server used an encoding the client does not decode.
    #[error("unsupported Content-Encoding: {0}")]
    Unsupported(String),
    /// The decoded body passed [`MAX_DECODED_BODY_BYTES`].
    #[error("Response too large: decoded {encoding} body larger than {limit} bytes")]
    TooLarge {
        /// The encoding.
        encoding: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The compressed data is invalid.
    #[error("cannot decode {encoding} body: {reason}")]
    Corrupt {
        /// The encoding.
        encoding: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
}

/// A content coding the client decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `gzip` (or `x-gzip`), possibly several members.
    Gzip,
    /// `deflate`: zlib-wrapped as the standard says, or raw deflate as some servers send.
    Deflate,
    /// `br`.
    Brotli,
    /// `zstd`.
    Zstd,
}

impl Encoding {
    /// The token used in HTTP headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
        }
    }

    /// The coding named by a `Content-Encoding` value: `None` for identity (or no header).
    pub fn from_header(headers: &HeaderMap) -> Result<Option<Encoding>, DecodeError> {
        let Some(v) = headers.get(CONTENT_ENCODING) else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(v.as_bytes());
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(None),
            "gzip" | "x-gzip" => Ok(Some(Encoding::Gzip)),
            "deflate" => Ok(Some(Encoding::Deflate)),
            "br" => Ok(Some(Encoding::Brotli)),
            "zstd" => Ok(Some(Encoding::Zstd)),
            _ => Err(DecodeError::Unsupported(printable(&text, 40))),
        }
    }
}

/// At most `max` characters of a peer's text, control characters replaced, for a message.
fn printable(s: &str, max: usize) -> String {
    s.trim()
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Compressed bytes received so far and not yet consumed; "would block" when empty, so the
/// decoders (which read from it) stop and resume when the next frame comes.
#[derive(Default)]
struct Input {
    data: Bytes,
    eof: bool,
}

impl Input {
    fn push(&mut self, data: Bytes) {
        if self.data.is_empty() {
            self.data = data;
        } else {
            let mut joined = Vec::with_capacity(self.data.len() + data.len());
            joined.extend_from_slice(&self.data);
            joined.extend_from_slice(&data);
            self.data = joined.into();
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Input {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.data.is_empty() && !self.eof {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(&self.data)
    }

    fn consume(&mut self, amt: usize) {
        self.data.advance(amt.min(self.data.len()));
    }
}

/// One decoder, reading from its [`Input`].
enum Reader {
    Gzip(flate2::bufread::MultiGzDecoder<Input>),
    Zlib(flate2::bufread::ZlibDecoder<Input>),
    RawDeflate(flate2::bufread::DeflateDecoder<Input>),
    /// `deflate` before its first two bytes say whether it is zlib-wrapped.
    DeflateUndecided(Input),
    Brotli(Box<brotli::Decompressor<Input>>),
    Zstd(zstd::stream::read::Decoder<'static, Input>),
}

impl Reader {
    fn input(&mut self) -> &mut Input {
        match self {
            Reader::Gzip(r) => r.get_mut(),
            Reader::Zlib(r) => r.get_mut(),
            Reader::RawDeflate(r) => r.get_mut(),
            Reader::DeflateUndecided(i) => i,
            Reader::Brotli(r) => r.get_mut(),
            Reader::Zstd(r) => r.get_mut(),
        }
    }

    /// Picks zlib or raw deflate once two bytes are known (RFC 1950: method 8, window at most
    /// 32 KiB, header check a multiple of 31).
    fn decide_deflate(&mut self) {
        let Reader::DeflateUndecided(input) = self else {
            return;
        };
        if input.data.len() < 2 && !input.eof {
            return;
        }
        let input = std::mem::take(input);
        let zlib = match input.data.get(..2) {
            Some(&[cmf, flg]) => {
                cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
            }
            _ => true,
        };
        *self = if zlib {
            Reader::Zlib(flate2::bufread::ZlibDecoder::new(input))
        } else {
            Reader::RawDeflate(flate2::bufread::DeflateDecoder::new(input))
        };
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.decide_deflate();
        match self {
            Reader::Gzip(r) => r.read(out),
            Reader::Zlib(r) => r.read(out),
            Reader::RawDeflate(r) => r.read(out),
            Reader::DeflateUndecided(_) => Err(io::ErrorKind::WouldBlock.into()),
            Reader::Brotli(r) => r.read(out),
            Reader::Zstd(r) => r.read(out),
        }
    }
}

/// Decodes one response body incrementally.
pub struct BodyDecoder {
    encoding: Encoding,
    reader: Reader,
    decoded_bytes: u64,
    out: Vec<u8>,
}

impl BodyDecoder {
    /// A decoder for `encoding`.
    pub fn new(encoding: Encoding) -> Result<Self, DecodeError> {
        let input = Input::default();
        let reader = match encoding {
            Encoding::Gzip => Reader::Gzip(flate2::bufread::MultiGzDecoder::new(input)),
            Encoding::Deflate => Reader::DeflateUndecided(input),
            Encoding::Brotli => Reader::Brotli(Box::new(brotli::Decompressor::new(
                input,
                BROTLI_BUFFER_BYTES,
            ))),
            Encoding::Zstd => {
                let corrupt = |e: io::Error| DecodeError::Corrupt {
                    encoding: "zstd",
                    reason: e.to_string(),
                };
                let mut d = zstd::stream::read::Decoder::with_buffer(input).map_err(corrupt)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(corrupt)?;
                Reader::Zstd(d)
            }
        };
        Ok(Self {
            encoding,
            reader,
            decoded_bytes: 0,
            out: vec![0; OUT_CHUNK_BYTES],
        })
    }

    /// Decodes `data` (one body frame) and hands the decoded bytes to `emit`, in chunks of at
    /// most 16 KiB, until the input is used up or `emit` breaks.
    pub fn decode(
        &mut self,
        data: Bytes,
        emit: impl FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, DecodeError> {
        self.reader.input().push(data);
        self.drain(emit)
    }

    /// The body ended: decodes what the decoder still holds. Compressed data cut short is an error.
    pub fn finish(
        &mut self,
        emit: impl FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, DecodeError> {
        self.reader.input().eof = true;
        self.drain(emit)
    }

    fn drain(
        &mut self,
        mut emit: impl FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, DecodeError> {
        loop {
            match self.reader.read(&mut self.out) {
                Ok(0) => return Ok(ControlFlow::Continue(())),
                Ok(n) => {
                    self.decoded_bytes += n as u64;
                    if self.decoded_bytes > MAX_DECODED_BODY_BYTES {
                        return Err(DecodeError::TooLarge {
                            encoding: self.encoding.as_str(),
                            limit: MAX_DECODED_BODY_BYTES,
                        });
                    }
                    if emit(&self.out[..n]).is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ControlFlow::Continue(()))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(DecodeError::Corrupt {
                        encoding: self.encoding.as_str(),
                        reason: printable(&e.to_string(), 120),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
