//! permessage-deflate (RFC 7692) negotiation: read the client's offers, answer with the first one we
//! can honour. The compression itself is done by the framing crate with the agreed parameters.

/// Window sizes zlib can use for raw deflate (RFC 7692 allows 8, which zlib cannot produce).
const WINDOW_BITS: std::ops::RangeInclusive<u8> = 9..=15;

/// The parameters agreed for one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateAgreement {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: Option<u8>,
    pub client_max_window_bits: Option<u8>,
}

impl DeflateAgreement {
    /// The `Sec-WebSocket-Extensions` value of the response.
    pub fn header_value(&self) -> String {
        let mut value = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            value.push_str(&format!("; server_max_window_bits={bits}"));
        }
        if let Some(bits) = self.client_max_window_bits {
            value.push_str(&format!("; client_max_window_bits={bits}"));
        }
        value
    }
}

/// Reads one offer's parameters; None when the offer is malformed or asks for what we cannot do.
fn accept_offer(params: &[&str]) -> Option<DeflateAgreement> {
    let mut agreement = DeflateAgreement {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: None,
        client_max_window_bits: None,
    };
    let mut seen: Vec<&str> = Vec::new();
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (param.trim(), None),
        };
        if seen.contains(&name) {
            return None; // each parameter at most once (RFC 7692, section 7)
        }
        seen.push(name);
        match (name, value) {
            ("server_no_context_takeover", None) => agreement.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => agreement.client_no_context_takeover = true,
            ("server_max_window_bits", Some(bits)) => {
                let bits: u8 = bits.parse().ok().filter(|b| (8..=15).contains(b))?;
                // We cannot compress with an 8-bit window; decline such an offer.
                if !WINDOW_BITS.contains(&bits) {
                    return None;
                }
                agreement.server_max_window_bits = Some(bits);
            }
            ("client_max_window_bits", None) => agreement.client_max_window_bits = Some(15),
            ("client_max_window_bits", Some(bits)) => {
                let bits: u8 = bits.parse().ok().filter(|b| (8..=15).contains(b))?;
                // An 8-bit window is inflated with 9 bits, which reads it correctly.
                agreement.client_max_window_bits = Some(bits.max(*WINDOW_BITS.start()));
            }
            _ => return None,
        }
    }
    Some(agreement)
}

/// The first acceptable permessage-deflate offer among `Sec-WebSocket-Extensions` header values.
pub fn negotiate<'a>(header_values: impl IntoIterator<Item = &'a str>) -> Option<DeflateAgreement> {
    for value in header_values {
        for offer in value.split(',') {
            let mut parts = offer.split(';').map(str::trim);
            if parts.next() != Some("permessage-deflate") {
                continue;
            }
            let params: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
            if let Some(agreement) = accept_offer(&params) {
                return Some(agreement);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_offer() {
        let agreement = negotiate(["permessage-deflate"]).expect("accepted");
        assert_eq!(agreement.header_value(), "permessage-deflate");
    }

    #[test]
    fn client_max_window_bits_without_value_is_answered_only_when_offered() {
        let agreement = negotiate(["permessage-deflate; client_max_window_bits"]).expect("accepted");
        assert_eq!(agreement.header_value(), "permessage-deflate; client_max_window_bits=15");
        assert_eq!(negotiate(["permessage-deflate"]).and_then(|a| a.client_max_window_bits), None);
    }

    #[test]
    fn parameters_are_echoed() {
        let offer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                     server_max_window_bits=10; client_max_window_bits=12";
        let agreement = negotiate([offer]).expect("accepted");
        assert_eq!(
            agreement.header_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=12"
        );
    }

    #[test]
    fn first_acceptable_of_several_offers() {
        let agreement = negotiate([
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; foo=1, x-other",
            "permessage-deflate; server_max_window_bits=9",
        ])
        .expect("accepted");
        assert_eq!(agreement.server_max_window_bits, Some(9));
    }

    #[test]
    fn client_window_of_8_is_read_with_9() {
        let agreement = negotiate(["permessage-deflate; client_max_window_bits=8"]).expect("accepted");
        assert_eq!(agreement.client_max_window_bits, Some(9));
    }

    #[test]
    fn malformed_offers_are_declined() {
        for offer in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; unknown",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(negotiate([offer]), None, "{offer}");
        }
    }

    /// Property test: any offer list is read without panicking, and what is agreed is something the
    /// compressor can do and a client can read back.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn parameter() -> impl Strategy<Value = String> {
            let bits = prop_oneof![-1..20i32, Just(8), Just(15)].prop_map(|n| n.to_string());
            prop_oneof![
                Just("server_no_context_takeover".to_string()),
                Just("client_no_context_takeover".to_string()),
                Just("client_max_window_bits".to_string()),
                bits.clone().prop_map(|n| format!("client_max_window_bits={n}")),
                bits.clone().prop_map(|n| format!("server_max_window_bits={n}")),
                bits.prop_map(|n| format!("server_max_window_bits=\"{n}\"")),
                "[ -~]{0,12}",
            ]
        }

        fn offer() -> impl Strategy<Value = String> {
            let name = prop_oneof![Just("permessage-deflate".to_string()), "[a-z-]{0,20}"];
            (name, proptest::collection::vec(parameter(), 0..5))
                .prop_map(|(name, params)| [name].into_iter().chain(params).collect::<Vec<_>>().join("; "))
        }

        proptest! {
            #[test]
            fn agreements_are_within_what_zlib_can_do(offers in proptest::collection::vec(offer(), 0..4)) {
                let value = offers.join(", ");
                if let Some(agreement) = negotiate([value.as_str()]) {
                    for bits in [agreement.server_max_window_bits, agreement.client_max_window_bits].into_iter().flatten() {
                        prop_assert!(WINDOW_BITS.contains(&bits), "{value}: {agreement:?}");
                    }
                    prop_assert!(agreement.header_value().starts_with("permessage-deflate"));
                }
            }
        }
    }
}
