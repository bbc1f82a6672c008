//! The chain text written back: the stored form (sealed literals included) and the masked
//! form people and the API see.

use serde_json::json;

use super::{ChainSpec, HopValue, When};

impl ChainSpec {
    fn render(&self, masked: bool) -> serde_json::Value {
        let hops: Vec<serde_json::Value> = self
            .hops
            .iter()
            .map(|h| {
                let mut o = serde_json::Map::new();
                if let Some(c) = &h.customer_id {
                    o.insert("customerId".into(), json!(c));
                }
                o.insert("name".into(), json!(h.name));
                let params: Vec<serde_json::Value> = h
                    .params
                    .iter()
                    .map(|p| {
                        let mut po = serde_json::Map::new();
                        po.insert("name".into(), json!(p.name));
                        match &p.value {
                            HopValue::Text(t) => {
                                po.insert("value".into(), json!(t));
                            }
                            HopValue::Sealed(s) if !masked => {
                                po.insert("value".into(), json!({"sealed": s}));
                            }
                            HopValue::Sealed(_) | HopValue::Keep => {
                                po.insert("value".into(), serde_json::Value::Null);
                                po.insert("is_set".into(), json!(true));
                            }
                        }
                        if p.encrypt {
                            po.insert("encrypt".into(), json!(true));
                        }
                        serde_json::Value::Object(po)
                    })
                    .collect();
                if !params.is_empty() {
                    o.insert("params".into(), serde_json::Value::Array(params));
                }
                if h.when != When::Success {
                    o.insert("when".into(), json!(h.when.as_str()));
                }
                serde_json::Value::Object(o)
            })
            .collect();
        if self.is_array {
            serde_json::Value::Array(hops)
        } else {
            hops.into_iter().next().unwrap_or(serde_json::Value::Null)
        }
    }

    /// The stored form: compact, no comments, sealed literals as `{"sealed": …}`.
    pub fn to_stored(&self) -> String {
        self.render(false).to_string()
    }

    /// What people and the API see: sealed literals as `"value": null, "is_set": true`.
    pub fn to_masked(&self) -> String {
        self.render(true).to_string()
    }
}
