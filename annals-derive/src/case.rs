//! The naming conventions: `MoneyDeposited` is handled by `money_deposited` and `BankAccount`
//! is stored under `bank-account`.

/// Splits a Rust identifier into lowercase words: at underscores, before an uppercase letter that
/// follows a lowercase letter or a digit, and before the last letter of an acronym that starts a
/// new word (`HTTPRequest` is `http`, `request`).
fn words(ident: &str) -> Vec<String> {
    let chars: Vec<char> = ident.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if c.is_uppercase() && !word.is_empty() {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = prev.is_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_uppercase() && next_is_lower);
            if boundary {
                words.push(std::mem::take(&mut word));
            }
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `MoneyDeposited` -> `money_deposited`.
pub(crate) fn snake_case(ident: &str) -> String {
    words(ident).join("_")
}

/// `BankAccount` -> `bank-account`.
pub(crate) fn kebab_case(ident: &str) -> String {
    words(ident).join("-")
}

#[cfg(test)]
mod tests {
    use super::{kebab_case, snake_case};

    #[test]
    fn snake_case_splits_words() {
        assert_eq!(snake_case("MoneyDeposited"), "money_deposited");
        assert_eq!(snake_case("Opened"), "opened");
        assert_eq!(snake_case("HTTPRequestSent"), "http_request_sent");
        assert_eq!(snake_case("LimitRaisedV2"), "limit_raised_v2");
        assert_eq!(snake_case("V2Opened"), "v2_opened");
        assert_eq!(snake_case("Already_Snake"), "already_snake");
        assert_eq!(snake_case("A"), "a");
    }

    #[test]
    fn kebab_case_splits_words() {
        assert_eq!(kebab_case("BankAccount"), "bank-account");
        assert_eq!(kebab_case("Account"), "account");
        assert_eq!(kebab_case("IOUBook"), "iou-book");
    }
}
