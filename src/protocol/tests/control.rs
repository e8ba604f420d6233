//! The control bodies: JSON shapes, session id rules, the close-code table.

use std::time::Duration;

use crate::protocol::{
    AppError, CloseClass, CloseInfo, ControlError, Hello, SessionId, Welcome, close_code,
};

#[test]
fn session_id_rules() {
    assert!(SessionId::new("a").is_ok());
    assert!(SessionId::new("c-17/run:7~!").is_ok());
    assert!(SessionId::new("x".repeat(128)).is_ok());
    assert_eq!(SessionId::new(""), Err(ControlError::SessionEmpty));
    assert_eq!(
        SessionId::new("x".repeat(129)),
        Err(ControlError::SessionTooLong { len: 129 })
    );
    assert_eq!(
        SessionId::new("a b"),
        Err(ControlError::SessionChar {
            index: 1,
            byte: b' '
        })
    );
    assert_eq!(
        SessionId::new("é"),
        Err(ControlError::SessionChar {
            index: 0,
            byte: 0xc3
        })
    );
    assert_eq!(
        SessionId::new("a\n"),
        Err(ControlError::SessionChar {
            index: 1,
            byte: b'\n'
        })
    );
}

#[test]
fn session_id_rejected_in_json() {
    let err =
        serde_json::from_str::<Hello>(r#"{"session":"","resume":false,"ack":0,"next_seq":1}"#)
            .unwrap_err();
    assert!(err.to_string().contains("session id is empty"), "{err}");
}

#[test]
fn hello_json_shape() {
    let hello = Hello {
        session: SessionId::new("c1").unwrap(),
        resume: true,
        ack: 7,
        next_seq: 12,
    };
    let json = serde_json::to_string(&hello).unwrap();
    assert_eq!(
        json,
        r#"{"session":"c1","resume":true,"ack":7,"next_seq":12}"#
    );
    assert_eq!(serde_json::from_str::<Hello>(&json).unwrap(), hello);
}

#[test]
fn welcome_json_shape_and_optional_window() {
    let mut welcome = Welcome {
        session: SessionId::new("c1").unwrap(),
        resumed: false,
        ack: 0,
        next_seq: 1,
        window: Duration::from_secs(30),
        max_in_flight: None,
    };
    let json = serde_json::to_string(&welcome).unwrap();
    assert_eq!(
        json,
        r#"{"session":"c1","resumed":false,"ack":0,"next_seq":1,"window_ms":30000}"#
    );
    welcome.max_in_flight = Some(64);
    let json = serde_json::to_string(&welcome).unwrap();
    assert!(
        json.ends_with(r#""window_ms":30000,"max_in_flight":64}"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<Welcome>(&json).unwrap(), welcome);
}

#[test]
fn unknown_fields_are_ignored() {
    let w: Welcome = serde_json::from_str(
        r#"{"session":"s","resumed":true,"ack":1,"next_seq":2,"window_ms":5,"future":[1]}"#,
    )
    .unwrap();
    assert_eq!(w.window, Duration::from_millis(5));
}

#[test]
fn close_json_shape() {
    let close = CloseInfo {
        code: 1013,
        class: CloseClass::Overload,
        retry_after: Some(Duration::from_millis(1500)),
        reason: "busy".into(),
    };
    let json = serde_json::to_string(&close).unwrap();
    assert_eq!(
        json,
        r#"{"code":1013,"class":"overload","retry_after_ms":1500,"reason":"busy"}"#
    );
    assert_eq!(serde_json::from_str::<CloseInfo>(&json).unwrap(), close);
    // null and absent both mean "no hint"; reason may be left out.
    let c: CloseInfo =
        serde_json::from_str(r#"{"code":1001,"class":"restart","retry_after_ms":null}"#).unwrap();
    assert_eq!(c.retry_after, None);
    assert_eq!(c.reason, "");
    let c: CloseInfo = serde_json::from_str(r#"{"code":1001,"class":"restart"}"#).unwrap();
    assert_eq!(c.retry_after, None);
    assert!(serde_json::from_str::<CloseInfo>(r#"{"code":1001,"class":"nope"}"#).is_err());
}

#[test]
fn close_class_table() {
    use CloseClass::*;
    let table = [
        (1000, Transient),
        (1001, Restart),
        (1002, Fatal),
        (1003, Fatal),
        (1004, Fatal),
        (1005, Transient),
        (1006, Transient),
        (1007, Transient),
        (1008, Fatal),
        (1009, Fatal),
        (1010, Fatal),
        (1011, Transient),
        (1012, Restart),
        (1013, Overload),
        (1014, Transient),
        (1015, Fatal),
        (1016, Fatal),
        (2999, Fatal),
        (3000, Auth),
        (3003, Auth),
        (3008, Transient),
        (close_code::GAP, Transient),
        (close_code::CORRUPT, Transient),
        (close_code::SUPERSEDED, Transient),
        (4499, Transient),
        (4500, Fatal),
        (4999, Fatal),
        (5000, Fatal),
        (999, Fatal),
    ];
    for (code, class) in table {
        assert_eq!(CloseClass::from_close_code(code), class, "code {code}");
    }
    assert!(!Fatal.is_retryable());
    assert!(Auth.is_retryable());
    let c = CloseInfo::from_code(1012, "deploy");
    assert_eq!((c.class, c.retry_after), (Restart, None));
}

#[test]
fn class_names_match_serde() {
    use CloseClass::*;
    for class in [Transient, Overload, Restart, Moved, Auth, Fatal] {
        let json = serde_json::to_string(&class).unwrap();
        assert_eq!(json, format!("\"{class}\""));
    }
}

#[test]
fn next_seq_zero_is_invalid() {
    let hello = Hello {
        session: SessionId::new("s").unwrap(),
        resume: false,
        ack: 0,
        next_seq: 0,
    };
    assert_eq!(hello.validate(), Err(ControlError::NextSeqZero));
}

#[test]
fn app_error_json_shape() {
    let e = AppError {
        code: 42,
        message: "no such room".into(),
    };
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(json, r#"{"code":42,"message":"no such room"}"#);
    assert_eq!(serde_json::from_str::<AppError>(&json).unwrap(), e);
}
