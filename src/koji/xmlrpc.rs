//! koji's dialect of XML-RPC over dxr: nil and i8 on, keyword arguments as a trailing
//! struct with `__starstar: true`, faults as typed errors carrying koji's codes, and
//! conversions to and from JSON (for `nodeimg koji call` and for metadata).

use dxr::{FaultResponse, MethodCall, MethodResponse, Value};

/// koji's fault classes by code (`koji/__init__.py`).
const FAULTS: [(i32, &str); 25] = [
    (1000, "GenericError"),
    (1001, "LockError"),
    (1002, "AuthError"),
    (1003, "TagError"),
    (1004, "ActionNotAllowed"),
    (1005, "BuildError"),
    (1006, "AuthLockError"),
    (1007, "AuthExpired"),
    (1008, "SequenceError"),
    (1009, "RetryError"),
    (1010, "PreBuildError"),
    (1011, "PostBuildError"),
    (1012, "BuildrootError"),
    (1013, "FunctionDeprecated"),
    (1014, "ServerOffline"),
    (1015, "LiveCDError"),
    (1016, "PluginError"),
    (1017, "CallbackError"),
    (1018, "ApplianceError"),
    (1019, "ParameterError"),
    (1020, "ImportError"),
    (1021, "ConfigurationError"),
    (1022, "LiveMediaError"),
    (1023, "GSSAPIAuthError"),
    (1024, "NameValidationError"),
];

pub const GENERIC_ERROR: i32 = 1000;
pub const AUTH_EXPIRED: i32 = 1007;
pub const RETRY_ERROR: i32 = 1009;
pub const SERVER_OFFLINE: i32 = 1014;

/// A fault the hub returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("koji {} ({code}): {message}", fault_name(*.code))]
pub struct Fault {
    pub code: i32,
    pub message: String,
}

impl Fault {
    pub fn name(&self) -> &'static str {
        fault_name(self.code)
    }
}

/// koji's class name for a fault code.
pub fn fault_name(code: i32) -> &'static str {
    FAULTS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("Fault", |(_, name)| name)
}

/// The body of a call: `params` then, when there are keyword arguments, the struct
/// koji's `encode_args` appends.
pub fn encode_call(method: &str, params: &[Value], kwargs: &[(&str, Value)]) -> String {
    let mut params = params.to_vec();
    if !kwargs.is_empty() {
        let mut map: std::collections::BTreeMap<String, Value> = kwargs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        map.insert("__starstar".to_owned(), Value::Boolean(true));
        params.push(Value::Struct(map));
    }
    let call = MethodCall {
        name: method.into(),
        params,
    };
    // dxr fails only on values it cannot represent, which Value cannot hold.
    let body = call.to_xml().unwrap_or_default();
    format!("<?xml version=\"1.0\"?>\n{body}")
}

/// A response body: the value, a fault, or an error saying what arrived instead.
pub fn decode_response(body: &str) -> Result<Result<Value, Fault>, String> {
    let body = strip_declaration(body);
    if let Ok(response) = MethodResponse::from_xml(body) {
        return Ok(Ok(response.value));
    }
    if let Ok(fault) = FaultResponse::from_xml(body) {
        return Ok(Err(Fault {
            code: fault.fault.code(),
            message: fault.fault.string().to_owned(),
        }));
    }
    let start: String = body.chars().take(200).collect();
    Err(format!("not an XML-RPC response: {start}"))
}

fn strip_declaration(body: &str) -> &str {
    let body = body.trim_start();
    match body.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map_or(body, |(_, after)| after.trim_start()),
        None => body,
    }
}

/// A struct member, when `value` is a struct that has it.
pub fn member<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Struct(map) => map.get(name),
        _ => None,
    }
}

/// An integer, from i4, i8 or a decimal string (koji sends some sizes as strings).
pub fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(i64::from(*i)),
        Value::Long(l) => Some(*l),
        Value::String(s) => s.parse().ok(),
        Value::Double(d) if d.fract() == 0.0 => Some(*d as i64),
        _ => None,
    }
}

pub fn as_str(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// A string value.
pub fn string(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// An integer value: i4 when it fits, i8 otherwise (as koji marshals ints).
pub fn int(i: i64) -> Value {
    match i32::try_from(i) {
        Ok(small) => Value::Integer(small),
        Err(_) => Value::Long(i),
    }
}

/// JSON → XML-RPC: null → nil, integers → i4/i8, objects → structs.
pub fn from_json(json: &serde_json::Value) -> Result<Value, String> {
    Ok(match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => int(i),
            (None, Some(f)) if n.is_f64() => Value::Double(f),
            _ => return Err(format!("{n} does not fit XML-RPC's 64-bit integers")),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => {
            Value::Array(items.iter().map(from_json).collect::<Result<_, _>>()?)
        }
        serde_json::Value::Object(map) => Value::Struct(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), from_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// XML-RPC → JSON: datetimes as ISO strings, base64 as `{"base64": "…"}`.
pub fn to_json(value: &Value) -> serde_json::Value {
    use base64::Engine as _;
    match value {
        Value::Integer(i) => (*i).into(),
        Value::Long(l) => (*l).into(),
        Value::Boolean(b) => (*b).into(),
        Value::String(s) => s.clone().into(),
        Value::Double(d) => {
            serde_json::Number::from_f64(*d).map_or(serde_json::Value::Null, Into::into)
        }
        Value::DateTime(dt) => dt.to_string().into(),
        Value::Base64(bytes) => serde_json::json!({
            "base64": base64::engine::general_purpose::STANDARD.encode(bytes)
        }),
        Value::Struct(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Value::Array(items) => items.iter().map(to_json).collect::<Vec<_>>().into(),
        Value::Nil => serde_json::Value::Null,
        _ => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_arguments_travel_as_koji_encodes_them() {
        let body = encode_call("CGImport", &[string("m.json")], &[("token", string("t"))]);
        assert!(body.contains("<methodName>CGImport</methodName>"), "{body}");
        assert!(
            body.contains("<name>__starstar</name><value><boolean>1</boolean></value>"),
            "{body}"
        );
        assert!(
            body.contains("<name>token</name><value><string>t</string></value>"),
            "{body}"
        );
    }

    #[test]
    fn faults_carry_kojis_codes() {
        let body = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>1007</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>session expired</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n";
        let fault = decode_response(body).unwrap().unwrap_err();
        assert_eq!(fault.code, AUTH_EXPIRED);
        assert_eq!(fault.name(), "AuthExpired");
        assert_eq!(
            fault.to_string(),
            "koji AuthExpired (1007): session expired"
        );
    }

    #[test]
    fn json_round_trips_through_xmlrpc_values() {
        let json = serde_json::json!({"a": [1, 5_000_000_000_i64, null, "x", true, 1.5]});
        assert_eq!(to_json(&from_json(&json).unwrap()), json);
        assert!(matches!(
            from_json(&serde_json::json!(5_000_000_000_i64)),
            Ok(Value::Long(_))
        ));
    }
}
