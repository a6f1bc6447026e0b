//! MD5, through AWS-LC's assembly.
//!
//! A single PUT's ETag is the MD5 of its content, so on a large upload MD5
//! is most of the server's CPU (bench/README.md, "Large objects are bounded
//! by MD5"). AWS-LC's x86-64 and AArch64 code hashes about 1.4 times as fast
//! as RustCrypto's `md-5` on this project's machines (750 against 550 MiB/s
//! on one core).

use aws_lc_sys::{MD5_Final, MD5_Init, MD5_Update, MD5_CTX};

/// An MD5 computation over data given in pieces.
pub struct Md5(MD5_CTX);

impl Md5 {
    pub fn new() -> Md5 {
        // SAFETY: MD5_CTX is plain data (integers and a byte array), so a
        // zeroed value is a valid one for MD5_Init to initialize; MD5_Init
        // only writes to the context it is given, and cannot fail.
        unsafe {
            let mut ctx: MD5_CTX = std::mem::zeroed();
            MD5_Init(&mut ctx);
            Md5(ctx)
        }
    }

    pub fn update(&mut self, data: impl AsRef<[u8]>) {
        let data = data.as_ref();
        // SAFETY: the context was initialized by MD5_Init, and `data` is
        // valid for reads of `data.len()` bytes for the call.
        unsafe {
            MD5_Update(&mut self.0, data.as_ptr().cast(), data.len());
        }
    }

    pub fn finalize(mut self) -> [u8; 16] {
        let mut digest = [0u8; 16];
        // SAFETY: the context was initialized by MD5_Init; MD5_Final writes
        // exactly MD5_DIGEST_LENGTH (16) bytes to `digest`.
        unsafe {
            MD5_Final(digest.as_mut_ptr(), &mut self.0);
        }
        digest
    }
}

impl Default for Md5 {
    fn default() -> Md5 {
        Md5::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Md5;

    fn digest(data: impl AsRef<[u8]>) -> [u8; 16] {
        let mut md5 = Md5::new();
        md5.update(data);
        md5.finalize()
    }

    #[test]
    fn digests_match_rfc_1321() {
        // RFC 1321, appendix A.5.
        for (input, expected) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(hex::encode(digest(input)), expected);
        }
        // In pieces that straddle MD5's 64-byte blocks.
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut pieces = Md5::new();
        for chunk in data.chunks(37) {
            pieces.update(chunk);
        }
        assert_eq!(pieces.finalize(), digest(&data));
    }
}
