//! Upstream secrets at rest: AES-256-GCM through the runtime's Web Crypto.
//! The stored format, the key fingerprints and which key opens a value are
//! `domain::sealed`; this is only the call into `crypto.subtle`, made
//! through `js_sys` because the `web-sys` features for `SubtleCrypto` are
//! not enabled by the `worker` crate.

use std::cell::OnceCell;
use std::rc::Rc;

use worker::js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array, global};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

use crate::domain::error::GatewayError;
use crate::domain::sealed::{self, Fingerprints, IV_LEN, Slot, Stored};

/// One imported AES-GCM key and its fingerprint.
struct SecretBox {
    key: JsValue,
    fingerprint: String,
}

/// The isolate's keys: `ENCRYPTION_KEY`, which seals everything new, and
/// during a rotation `ENCRYPTION_KEY_PREVIOUS`, which only opens.
pub struct Keyring {
    current: SecretBox,
    previous: Option<SecretBox>,
    fingerprints: Fingerprints,
}

thread_local! {
    /// The keyring for this isolate's keys, imported once.
    static RING: OnceCell<Rc<Keyring>> = const { OnceCell::new() };
}

fn js_err(what: &str) -> impl FnOnce(JsValue) -> GatewayError + '_ {
    move |e| GatewayError::Internal(format!("webcrypto {what}: {e:?}"))
}

async fn subtle_call(method: &str, args: &Array) -> Result<JsValue, GatewayError> {
    let crypto = Reflect::get(&global(), &JsValue::from_str("crypto")).map_err(js_err("crypto"))?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).map_err(js_err("subtle"))?;
    let function: Function = Reflect::get(&subtle, &JsValue::from_str(method))
        .map_err(js_err(method))?
        .dyn_into()
        .map_err(js_err(method))?;
    let promise: Promise = function
        .apply(&subtle, args)
        .map_err(js_err(method))?
        .dyn_into()
        .map_err(js_err(method))?;
    JsFuture::from(promise).await.map_err(js_err(method))
}

fn aes_gcm(iv: Option<&[u8]>) -> Result<Object, GatewayError> {
    let params = Object::new();
    Reflect::set(&params, &"name".into(), &"AES-GCM".into()).map_err(js_err("params"))?;
    if let Some(iv) = iv {
        Reflect::set(&params, &"iv".into(), &Uint8Array::from(iv).into())
            .map_err(js_err("params"))?;
    }
    Ok(params)
}

fn bytes_of(buffer: &JsValue) -> Vec<u8> {
    Uint8Array::new(buffer).to_vec()
}

impl SecretBox {
    async fn import(encryption_key: &str) -> Result<Self, GatewayError> {
        let material = sealed::key_material(encryption_key);
        let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
        let args = Array::new();
        args.push(&"raw".into());
        args.push(&Uint8Array::from(&material[..]).into());
        args.push(&aes_gcm(None)?.into());
        args.push(&JsValue::FALSE);
        args.push(&usages.into());
        let key = subtle_call("importKey", &args).await?;
        Ok(Self {
            key,
            fingerprint: sealed::fingerprint(encryption_key),
        })
    }

    async fn seal(&self, plain: &str) -> Result<String, GatewayError> {
        let mut iv = [0u8; IV_LEN];
        getrandom::fill(&mut iv).map_err(|e| GatewayError::Internal(format!("random IV: {e}")))?;
        let args = Array::of3(
            &aes_gcm(Some(&iv))?.into(),
            &self.key,
            &Uint8Array::from(plain.as_bytes()).into(),
        );
        let ciphertext = subtle_call("encrypt", &args).await?;
        Ok(sealed::format(
            &self.fingerprint,
            &iv,
            &bytes_of(&ciphertext),
        ))
    }

    async fn open(&self, iv: &[u8], ciphertext: &[u8]) -> Result<String, GatewayError> {
        let args = Array::of3(
            &aes_gcm(Some(iv))?.into(),
            &self.key,
            &Uint8Array::from(ciphertext).into(),
        );
        let plain = subtle_call("decrypt", &args).await?;
        String::from_utf8(bytes_of(&plain))
            .map_err(|_| GatewayError::Internal("decrypted secret is not UTF-8".into()))
    }
}

impl Keyring {
    /// The keyring for `current` (and `previous`, during a rotation),
    /// imported once per isolate: a secret's value cannot change under a
    /// running isolate.
    pub async fn for_isolate(
        current: &str,
        previous: Option<&str>,
    ) -> Result<Rc<Self>, GatewayError> {
        if let Some(existing) = RING.with(|r| r.get().cloned()) {
            return Ok(existing);
        }
        let current = SecretBox::import(current).await?;
        let previous = match previous {
            Some(key) if sealed::fingerprint(key) != current.fingerprint => {
                Some(SecretBox::import(key).await?)
            }
            _ => None,
        };
        let fingerprints = Fingerprints::new(
            current.fingerprint.clone(),
            previous.as_ref().map(|p| p.fingerprint.clone()),
        );
        let made = Rc::new(Self {
            current,
            previous,
            fingerprints,
        });
        Ok(RING.with(|r| r.get_or_init(|| made).clone()))
    }

    pub fn fingerprints(&self) -> &Fingerprints {
        &self.fingerprints
    }

    /// Seals `plain` under the current key.
    pub async fn seal(&self, plain: &str) -> Result<String, GatewayError> {
        self.current.seal(plain).await
    }

    /// Opens a stored value with whichever key fits (plaintext as it is).
    pub async fn open(&self, stored: &str) -> Result<String, GatewayError> {
        let (named, iv, ciphertext) = match sealed::parse(stored) {
            Stored::Plain(plain) => return Ok(plain.to_owned()),
            Stored::Corrupt => {
                return Err(GatewayError::Internal("stored secret is corrupt".into()));
            }
            Stored::Sealed {
                key,
                iv,
                ciphertext,
            } => (key, iv, ciphertext),
        };
        let openers = self.fingerprints.openers(named);
        for slot in &openers {
            let key = match (slot, &self.previous) {
                (Slot::Current, _) => &self.current,
                (Slot::Previous, Some(previous)) => previous,
                (Slot::Previous, None) => continue,
            };
            if let Ok(plain) = key.open(&iv, &ciphertext).await {
                return Ok(plain);
            }
        }
        if named.is_some() && !openers.is_empty() {
            // The key it names is here but refuses it: altered, not rotated.
            return Err(GatewayError::Internal(
                "stored secret does not decrypt under the key it names".into(),
            ));
        }
        Err(GatewayError::Internal(self.fingerprints.unopenable(named)))
    }
}

/// A random lease id: `N` random bytes as hex.
pub fn random_hex<const N: usize>() -> Result<String, GatewayError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| GatewayError::Internal(format!("random lease id: {e}")))?;
    Ok(crate::domain::sha256::to_hex(&bytes))
}

/// `N` random bytes (a request id); zeros in the unlikely case the runtime gives
/// no randomness, mixed with the clock so ids still differ.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::fill(&mut bytes).is_err() {
        for (i, b) in crate::edge::now_ms()
            .to_le_bytes()
            .iter()
            .enumerate()
            .take(N)
        {
            bytes[i] = *b;
        }
    }
    bytes
}

/// A random number (a rotation's starting point, a gate's incarnation); the
/// clock in the unlikely case the runtime gives no randomness.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return crate::edge::now_ms();
    }
    u64::from_le_bytes(bytes)
}
