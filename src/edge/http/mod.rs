//! HTTP plumbing every layer may use: capped request bodies, responses, and
//! streamed bodies written through the runtime's native pipe. Knows no other
//! edge module.

pub mod body;
pub mod render;
pub mod stream;

/// The runtime's request as the worker crate's, without its `cf` object.
/// The crate's conversion reads `request.cf` on every request, which makes
/// the runtime build that object; gemgate reads nothing from it (the
/// caller's address comes from `cf-connecting-ip`), so an own `cf` property
/// of `undefined` shadows the runtime's getter first.
pub fn without_cf(req: worker::web_sys::Request) -> worker::Request {
    use worker::{js_sys, wasm_bindgen::JsValue};
    thread_local! {
        static NO_CF: js_sys::Object = {
            let descriptor = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&descriptor, &"value".into(), &JsValue::UNDEFINED);
            descriptor
        };
    }
    NO_CF.with(|descriptor| {
        // An object that refuses the property keeps its `cf`: nothing is lost but the saving.
        let _ = js_sys::Reflect::define_property(&req, &"cf".into(), descriptor);
    });
    worker::Request::from(req)
}
