//! The signature appended to a kernel module file, as `modinfo` shows it:
//! signer, key, hash algorithm, signature bytes.
//!
//! Layout (`include/linux/module_signature.h`): the module, the signature
//! (`sig_len` bytes), a 12-byte trailer `{algo, hash, id_type, signer_len,
//! key_id_len, pad[3], be32 sig_len}`, the magic string. With `id_type` 2
//! (PKCS#7, the only kind kernels since 4.x write) the signature is a CMS
//! SignedData whose signer is named by the issuer and serial number of its
//! certificate: the signer is the issuer's common name, the key its serial.

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::{Decode, Encode};
use x509_cert::name::Name;

const SIG_MAGIC: &[u8] = b"~Module signature appended~\n";
const TRAILER_LEN: usize = 12;
const PKEY_ID_PKCS7: u8 = 2;

/// What the signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSignature {
    /// The common name of the signing certificate's issuer.
    pub signer: Option<String>,
    /// The certificate's serial number (or subject key id), `AB:CD:...`.
    pub key: String,
    /// `sha256`, `sha512`... (the dotted OID when unknown).
    pub hash_algorithm: String,
    /// The signature bytes, `AB:CD:...`.
    pub signature: String,
}

/// Why an appended signature could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("module signature trailer is cut short or claims more bytes than the file has")]
    Truncated,
    #[error("module signature of key id type {0}, not PKCS#7")]
    NotPkcs7(u8),
    #[error("module signature is not a PKCS#7 SignedData with a signer: {0}")]
    Malformed(String),
}

/// The signature of a module file: `Ok(None)` when none is appended.
pub fn parse(file: &[u8]) -> Result<Option<ModuleSignature>, SignatureError> {
    let Some(rest) = file.strip_suffix(SIG_MAGIC) else { return Ok(None) };
    let trailer_at = rest.len().checked_sub(TRAILER_LEN).ok_or(SignatureError::Truncated)?;
    let trailer = &rest[trailer_at..];
    if trailer[2] != PKEY_ID_PKCS7 {
        return Err(SignatureError::NotPkcs7(trailer[2]));
    }
    let sig_len = u32::from_be_bytes([trailer[8], trailer[9], trailer[10], trailer[11]]) as usize;
    let sig_at = trailer_at.checked_sub(sig_len).ok_or(SignatureError::Truncated)?;
    pkcs7(&rest[sig_at..trailer_at]).map(Some)
}

fn malformed(e: impl std::fmt::Display) -> SignatureError {
    SignatureError::Malformed(e.to_string())
}

fn pkcs7(der_bytes: &[u8]) -> Result<ModuleSignature, SignatureError> {
    let info = ContentInfo::from_der(der_bytes).map_err(malformed)?;
    if info.content_type != const_oid::db::rfc5911::ID_SIGNED_DATA {
        return Err(malformed(format!("content type {}", info.content_type)));
    }
    let signed: SignedData = info.content.decode_as().map_err(malformed)?;
    let signer = signed.signer_infos.0.iter().next().ok_or_else(|| malformed("no signer"))?;
    let (issuer, key) = match &signer.sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => (common_name(&ias.issuer), colon_hex(ias.serial_number.as_bytes())),
        SignerIdentifier::SubjectKeyIdentifier(ski) => (None, colon_hex(ski.0.as_bytes())),
    };
    Ok(ModuleSignature {
        signer: issuer,
        key,
        hash_algorithm: hash_name(&signer.digest_alg.oid),
        signature: colon_hex(signer.signature.as_bytes()),
    })
}

/// The first CN of a name.
fn common_name(name: &Name) -> Option<String> {
    name.0.iter().flat_map(|rdn| rdn.0.iter()).find_map(|atv| {
        if atv.oid != const_oid::db::rfc4519::CN {
            return None;
        }
        // Whatever string type it is, its content octets are the text.
        let any = atv.value.to_der().ok()?;
        let any = der::Any::from_der(&any).ok()?;
        std::str::from_utf8(any.value()).ok().map(str::to_string)
    })
}

fn hash_name(oid: &der::asn1::ObjectIdentifier) -> String {
    use const_oid::db::rfc5912;
    let known = [
        (rfc5912::ID_SHA_1, "sha1"),
        (rfc5912::ID_SHA_224, "sha224"),
        (rfc5912::ID_SHA_256, "sha256"),
        (rfc5912::ID_SHA_384, "sha384"),
        (rfc5912::ID_SHA_512, "sha512"),
    ];
    known
        .iter()
        .find(|(o, _)| o == oid)
        .map_or_else(|| oid.to_string(), |(_, n)| (*n).to_string())
}

/// `AB:CD:EF`, as modinfo prints keys and signatures.
fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/modules/signed.ko")).unwrap()
    }

    #[test]
    fn a_signed_module_names_its_signer_key_algorithm_and_signature() {
        let sig = parse(&fixture()).unwrap().expect("signed");
        assert_eq!(sig.signer.as_deref(), Some("ioc-scan test module signing key"));
        assert_eq!(sig.key, "1C:0F:FE:E5");
        assert_eq!(sig.hash_algorithm, "sha256");
        assert_eq!(sig.signature.len(), 256 * 3 - 1, "an RSA-2048 signature");
        assert!(sig.signature.starts_with("11:E6:65:81:79:A9:33:0B"), "{}", sig.signature);
    }

    #[test]
    fn unsigned_truncated_and_corrupt_signatures_are_told_apart() {
        assert_eq!(parse(b"\x7fELF no signature"), Ok(None));
        assert_eq!(parse(SIG_MAGIC), Err(SignatureError::Truncated));
        let mut f = fixture();
        let n = f.len();
        // sig_len larger than the file.
        f[n - SIG_MAGIC.len() - 4] = 0xff;
        assert_eq!(parse(&f), Err(SignatureError::Truncated));
        let mut f = fixture();
        f[n - SIG_MAGIC.len() - TRAILER_LEN + 2] = 1;
        assert_eq!(parse(&f), Err(SignatureError::NotPkcs7(1)));
        let mut f = fixture();
        let sig_at = n - SIG_MAGIC.len() - TRAILER_LEN - 430;
        f[sig_at] = 0x31;
        assert!(matches!(parse(&f), Err(SignatureError::Malformed(_))));
    }
}
