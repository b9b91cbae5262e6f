//! Settings at rest. Setting values are tenants' API secrets, so the registry stores them
//! sealed (ChaCha20-Poly1305) under a key kept in a file of its own: a copy of the database, a
//! backup or a leaked WAL file shows no secret without the key. Each value is bound to its
//! tenant, integration and name, so a sealed value moved to another row does not open.

use std::io;
use std::path::Path;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};

const NONCE_BYTES: usize = 12;

/// The key settings are sealed with.
#[derive(Clone)]
pub struct SettingsKey {
    cipher: ChaCha20Poly1305,
}

/// Never prints the key.
impl std::fmt::Debug for SettingsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SettingsKey(..)")
    }
}

/// Where a key came from: a file that was there, or one made now and not yet written.
#[derive(Debug)]
pub enum KeySource {
    /// Read from its file.
    Read(SettingsKey),
    /// Made now: [`SettingsKey::write`] it before the database uses it.
    Generated(SettingsKey, [u8; 32]),
}

impl SettingsKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(bytes)),
        }
    }

    /// Reads the key in `path` (64 hex digits), or makes a new random one if there is no file.
    /// A new key is not written here: the caller writes it before the database seals anything
    /// with it, and takes it back if the database holds settings it does not open, so that a
    /// lost key file is never silently replaced.
    pub fn read_or_generate(path: &Path) -> io::Result<KeySource> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut bytes).map_err(|err| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} is not a settings key (64 hex digits): {err}",
                            path.display()
                        ),
                    )
                })?;
                Ok(KeySource::Read(Self::from_bytes(&bytes)))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|err| io::Error::other(err.to_string()))?;
                Ok(KeySource::Generated(Self::from_bytes(&bytes), bytes))
            }
            Err(err) => Err(err),
        }
    }

    /// Writes a generated key to `path`, readable by its owner only.
    pub fn write(path: &Path, bytes: &[u8; 32]) -> io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        io::Write::write_all(&mut options.open(path)?, hex::encode(bytes).as_bytes())
    }

    /// Seals `value`, bound to `context` (which names the setting): a random nonce, then the
    /// ciphertext with its tag.
    pub fn seal(&self, context: &str, value: &str) -> io::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|err| io::Error::other(err.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| io::Error::other("sealing a setting failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Opens what [`SettingsKey::seal`] made for the same `context`; `None` if this key did not
    /// seal it, or it was sealed for another setting, or it was changed.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Option<String> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_BYTES)?;
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_context() {
        let key = SettingsKey::from_bytes(&[7; 32]);
        let sealed = key.seal("acme/pbx/api_secret", "hunter22").expect("seals");
        assert!(!sealed.windows(8).any(|window| window == b"hunter22"));
        assert_eq!(
            key.open("acme/pbx/api_secret", &sealed).as_deref(),
            Some("hunter22")
        );
        assert_eq!(key.open("rival/pbx/api_secret", &sealed), None);
        assert_eq!(
            SettingsKey::from_bytes(&[8; 32]).open("acme/pbx/api_secret", &sealed),
            None
        );
        let mut changed = sealed.clone();
        *changed.last_mut().expect("not empty") ^= 1;
        assert_eq!(key.open("acme/pbx/api_secret", &changed), None);
        assert_eq!(key.open("acme/pbx/api_secret", &sealed[..5]), None);
        assert_ne!(
            sealed,
            key.seal("acme/pbx/api_secret", "hunter22").expect("seals")
        );
    }

    #[test]
    fn a_generated_key_is_written_once_and_read_back() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("settings-key");
        let KeySource::Generated(generated, bytes) =
            SettingsKey::read_or_generate(&path).expect("generates")
        else {
            panic!("there was no key file");
        };
        SettingsKey::write(&path, &bytes).expect("writes");
        assert!(
            SettingsKey::write(&path, &bytes).is_err(),
            "never overwritten"
        );
        let KeySource::Read(read) = SettingsKey::read_or_generate(&path).expect("reads") else {
            panic!("the key file was written");
        };
        let sealed = generated.seal("a/b/c", "value").expect("seals");
        assert_eq!(read.open("a/b/c", &sealed).as_deref(), Some("value"));

        std::fs::write(&path, "not hex").expect("writes");
        let err = SettingsKey::read_or_generate(&path).expect_err("refused");
        assert!(err.to_string().contains("is not a settings key"), "{err}");
    }
}
