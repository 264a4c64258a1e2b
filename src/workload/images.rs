//! Images for vision models (`--image PATH`, `--synthetic-image WxH`): loaded or drawn once,
//! kept as `data:` URLs, and attached per request to the last user message as an OpenAI
//! `image_url` content part.
//!
//! The synthetic image is a PNG of seeded noise (noise does not compress, so its size on the
//! wire is what a photo of that size would be). The PNG writer is hand-written — a signature,
//! an IHDR, one zlib IDAT (flate2) and an IEND, with CRCs — because it is 30 lines and an image
//! crate would bring a decoder stack for one encoder call.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Most bytes of image files loaded from a folder, in total.
pub const MAX_TOTAL_BYTES: u64 = 256 << 20;
/// Largest synthetic image side, pixels.
pub const MAX_SIDE_PX: u32 = 8192;

/// Why the images could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// A file or folder could not be read.
    #[error("--image {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// No image file in the folder.
    #[error("--image {0}: no .png, .jpg, .jpeg, .gif or .webp file there")]
    Empty(PathBuf),
    /// A file that is not an image by its name.
    #[error("--image {0}: not a .png, .jpg, .jpeg, .gif or .webp file")]
    NotImage(PathBuf),
    /// Too much to hold.
    #[error(
        "--image {0}: more than {MAX_TOTAL_BYTES} bytes of images; use fewer or smaller files"
    )]
    TooLarge(PathBuf),
}

/// The images to attach, as `data:` URLs, picked in turn.
#[derive(Debug)]
pub struct Images {
    urls: Vec<Bytes>,
    next: std::sync::atomic::AtomicU64,
}

fn mime(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    })
}

fn data_url(mime: &str, bytes: &[u8]) -> Bytes {
    Bytes::from(format!("data:{mime};base64,{}", BASE64.encode(bytes)))
}

impl Images {
    /// The image file at `path`, or every image file in the folder `path` (sorted by name).
    pub fn load(path: &Path) -> Result<Images, ImagesError> {
        let read_err = |source| ImagesError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        let files: Vec<PathBuf> = if meta.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(read_err)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && mime(p).is_some())
                .collect();
            v.sort();
            v
        } else {
            if mime(path).is_none() {
                return Err(ImagesError::NotImage(path.to_path_buf()));
            }
            vec![path.to_path_buf()]
        };
        if files.is_empty() {
            return Err(ImagesError::Empty(path.to_path_buf()));
        }
        let mut total = 0u64;
        let mut urls = Vec::with_capacity(files.len());
        for f in files {
            let size = std::fs::metadata(&f)
                .map_err(|source| ImagesError::Read {
                    path: f.clone(),
                    source,
                })?
                .len();
            total = total.saturating_add(size);
            if total > MAX_TOTAL_BYTES {
                return Err(ImagesError::TooLarge(path.to_path_buf()));
            }
            let bytes = std::fs::read(&f).map_err(|source| ImagesError::Read {
                path: f.clone(),
                source,
            })?;
            urls.push(data_url(mime(&f).unwrap_or("image/png"), &bytes));
        }
        Ok(Images {
            urls,
            next: 0.into(),
        })
    }

    /// One PNG of `width` × `height` pixels of noise from `seed`.
    pub fn synthetic(width: u32, height: u32, seed: u64) -> Images {
        Images {
            urls: vec![data_url("image/png", &noise_png(width, height, seed))],
            next: 0.into(),
        }
    }

    /// How many images there are.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// `messages_json` with the next image (in turn) added to its last user message.
    pub fn attach_next(&self, messages_json: &[u8]) -> Bytes {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.attach(messages_json, n)
    }

    /// `messages_json` with image `n` (in turn) added to its last user message.
    pub fn attach(&self, messages_json: &[u8], n: u64) -> Bytes {
        let Some(url) = self.urls.get((n % self.urls.len().max(1) as u64) as usize) else {
            return Bytes::copy_from_slice(messages_json);
        };
        let Ok(Value::Array(mut messages)) = serde_json::from_slice::<Value>(messages_json) else {
            return Bytes::copy_from_slice(messages_json);
        };
        let url = String::from_utf8_lossy(url);
        let part = json!({"type": "image_url", "image_url": {"url": url}});
        if let Some(last) = messages.iter_mut().rev().find(|m| m["role"] == "user") {
            let content = last["content"].take();
            last["content"] = match content {
                Value::String(text) => json!([{"type": "text", "text": text}, part]),
                Value::Array(mut parts) => {
                    parts.push(part);
                    Value::Array(parts)
                }
                _ => json!([part]),
            };
        }
        serde_json::to_vec(&messages)
            .map_or_else(|_| Bytes::copy_from_slice(messages_json), Bytes::from)
    }
}

/// A PNG (8-bit RGB, no interlace) of seeded noise.
pub fn noise_png(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let (w, h) = (width.clamp(1, MAX_SIDE_PX), height.clamp(1, MAX_SIDE_PX));
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let row = 1 + 3 * w as usize;
    let mut raw = vec![0u8; row * h as usize];
    for line in raw.chunks_mut(row) {
        // Filter type 0 (none), then the pixels.
        rng.fill(&mut line[1..]);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = z.write_all(&raw);
    let idat = z.finish().unwrap_or_default();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    png.extend_from_slice(&crc.sum().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synthetic_png_is_well_formed_and_incompressible() {
        let png = noise_png(64, 32, 7);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 64);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 32);
        // The IHDR's CRC, recomputed.
        let mut crc = flate2::Crc::new();
        crc.update(&png[12..29]);
        assert_eq!(crc.sum().to_be_bytes(), png[29..33]);
        assert!(
            png.len() > 64 * 32 * 3,
            "noise does not compress: {}",
            png.len()
        );
        assert!(
            png.ends_with(&[0xAE, 0x42, 0x60, 0x82]),
            "IEND's CRC ends the file"
        );
        assert_eq!(noise_png(64, 32, 7), png, "seeded");
    }

    #[test]
    fn the_image_goes_to_the_last_user_message() {
        let im = Images::synthetic(4, 4, 1);
        let m = br#"[{"role":"system","content":"s"},{"role":"user","content":"hi"}]"#;
        let v: Value = serde_json::from_slice(&im.attach(m, 0)).unwrap();
        assert_eq!(v[0]["content"], "s");
        assert_eq!(v[1]["content"][0], json!({"type": "text", "text": "hi"}));
        let url = v[1]["content"][1]["image_url"]["url"].as_str().unwrap();
        assert!(
            url.starts_with("data:image/png;base64,iVBORw0KGgo"),
            "{url}"
        );
    }

    #[test]
    fn files_and_folders_load_and_bad_paths_are_named() {
        let dir = std::env::temp_dir().join(format!("gsai-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.png"), noise_png(2, 2, 1)).unwrap();
        std::fs::write(dir.join("a.jpg"), b"\xff\xd8\xff").unwrap();
        std::fs::write(dir.join("notes.txt"), b"x").unwrap();
        let im = Images::load(&dir).unwrap();
        assert_eq!(im.len(), 2);
        assert!(im.urls[0].starts_with(b"data:image/jpeg;base64,"));
        let e = Images::load(&dir.join("notes.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("notes.txt") && e.contains("not a .png"), "{e}");
        let e = Images::load(&dir.join("missing.png"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--image "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
