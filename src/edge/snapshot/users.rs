//! The per-isolate cache of user keys, by the hash of the presented token.
//! The `UserLedger` is authoritative for everything that must take effect at
//! once, so this only saves D1 reads.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::domain::error::GatewayError;
use crate::domain::userkey;
use crate::domain::users::UserRecord;
use crate::edge::app::App;
use crate::edge::now_ms;
use crate::edge::store::users as user_store;

/// How long an isolate trusts its copy of a user (or of "no such key").
const CACHE_TTL_MS: u64 = 10_000;
const CACHE_MAX: usize = 10_000;

/// Key hash → (when it was read, the user or "no such key").
type Cache = HashMap<String, (u64, Option<Rc<UserRecord>>)>;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(HashMap::new());
}

/// Forgets every cached user: an admin write in this isolate is seen at once.
pub fn invalidate() {
    CACHE.with(|c| c.borrow_mut().clear());
}

/// The user owning `token`, if it is a user key.
pub async fn by_token(app: &App, token: &str) -> Result<Option<Rc<UserRecord>>, GatewayError> {
    if !userkey::plausible(token) {
        return Ok(None);
    }
    let hash = userkey::hash(token);
    let now = now_ms();
    let cached = CACHE.with(|c| {
        c.borrow()
            .get(&hash)
            .filter(|(at, _)| now.saturating_sub(*at) < CACHE_TTL_MS)
            .map(|(_, user)| user.clone())
    });
    if let Some(user) = cached {
        return Ok(user);
    }
    let user = user_store::by_hash(&app.db()?, &hash).await?.map(Rc::new);
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (now, user.clone()));
    });
    Ok(user)
}
