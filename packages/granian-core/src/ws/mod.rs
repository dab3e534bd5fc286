//! The WebSocket engine shared by every async interface: the opening handshake (HTTP/1.1 upgrade
//! and HTTP/2 extended CONNECT), permessage-deflate negotiation, and the session that owns an open
//! connection (framing, limits, pings, close handshake, flow control). Python-free; the interfaces
//! adapt [`session::WsChannels`] to RSGI's and ASGI's objects.

pub mod deflate;
pub mod handshake;
pub mod session;
mod stream;

/// Whether an app may send `code` in a close frame (RFC 6455, section 7.4): 1000-1003, 1007-1014
/// and the registered/private range 3000-4999.
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Cuts a close reason to the 123 bytes a close frame can carry, at a character boundary.
pub fn close_reason(reason: &str) -> &str {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_codes() {
        for code in [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(is_sendable_close_code(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert!(!is_sendable_close_code(code), "{code}");
        }
    }

    #[test]
    fn reasons_fit_a_control_frame() {
        assert_eq!(close_reason("bye"), "bye");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123 && cut.chars().all(|c| c == 'é'));
    }
}
