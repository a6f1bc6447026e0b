//! Function names as requests give them: a plain name, a partial ARN
//! (`123456789012:function:name`) or a full ARN, each with an optional
//! qualifier (`:$LATEST`, `:1`, `:alias`).

use crate::error::{AwsError, ErrorCode, ValidationErrors};

/// AWS's pattern for the `functionName` member, quoted verbatim in its
/// validation messages.
pub const FUNCTION_NAME_PATTERN: &str = r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?";

/// A version or alias qualifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qualifier {
    Latest,
    Version(u64),
    Alias(String),
}

impl Qualifier {
    pub fn parse(value: &str) -> Result<Qualifier, AwsError> {
        if value == "$LATEST" {
            return Ok(Qualifier::Latest);
        }
        let valid = !value.is_empty()
            && value.len() <= 128
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            let mut v = ValidationErrors::new();
            v.push(
                value,
                "qualifier",
                r"Member must satisfy regular expression pattern: \$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+",
            );
            return Err(v
                .into_result(ErrorCode::ValidationException)
                .err()
                .unwrap_or_else(|| AwsError::validation("invalid qualifier")));
        }
        if value.chars().all(|c| c.is_ascii_digit()) {
            return value.parse().map(Qualifier::Version).map_err(|_| {
                AwsError::invalid_parameter(format!("Invalid function version {value}"))
            });
        }
        Ok(Qualifier::Alias(value.to_string()))
    }

    pub fn as_string(&self) -> String {
        match self {
            Qualifier::Latest => "$LATEST".into(),
            Qualifier::Version(v) => v.to_string(),
            Qualifier::Alias(a) => a.clone(),
        }
    }
}

/// A function reference as parsed from a request, before it is checked
/// against the caller's account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<Qualifier>,
    pub account: Option<String>,
    pub region: Option<String>,
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(crate) fn is_account(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

fn is_qualifier_text(s: &str) -> bool {
    s == "$LATEST" || is_name(s)
}

pub(crate) fn is_region(s: &str) -> bool {
    // [a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts[parts.len() - 1].len() == 1
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
}

impl FunctionRef {
    /// Parses the `functionName` member. `max_len` is the member's length
    /// limit for the operation (140 for most; 64 is checked on the bare name
    /// at creation).
    pub fn parse(raw: &str, max_len: usize) -> Result<FunctionRef, AwsError> {
        let pattern_error = || {
            let mut v = ValidationErrors::new();
            v.push(
                raw,
                "functionName",
                &format!("Member must satisfy regular expression pattern: {FUNCTION_NAME_PATTERN}"),
            );
            v.into_result(ErrorCode::ValidationException)
                .err()
                .unwrap_or_else(|| AwsError::validation("invalid function name"))
        };
        if raw.len() > max_len {
            let mut v = ValidationErrors::new();
            v.push(
                raw,
                "functionName",
                &format!("Member must have length less than or equal to {max_len}"),
            );
            return Err(v
                .into_result(ErrorCode::ValidationException)
                .err()
                .unwrap_or_else(|| AwsError::validation("function name too long")));
        }
        let parts: Vec<&str> = raw.split(':').collect();
        let (account, region, name, qualifier) = if parts.first() == Some(&"arn") {
            // arn:aws:lambda:region:account:function:name[:qualifier]
            if !(7..=8).contains(&parts.len())
                || !parts[1].starts_with("aws")
                || parts[2] != "lambda"
                || !is_region(parts[3])
                || !is_account(parts[4])
                || parts[5] != "function"
            {
                return Err(pattern_error());
            }
            (
                Some(parts[4]),
                Some(parts[3]),
                parts[6],
                parts.get(7).copied(),
            )
        } else {
            match parts.as_slice() {
                [name] => (None, None, *name, None),
                [name, q] if is_name(name) => (None, None, *name, Some(*q)),
                [acct, "function", name] if is_account(acct) => (Some(*acct), None, *name, None),
                [acct, "function", name, q] if is_account(acct) => {
                    (Some(*acct), None, *name, Some(*q))
                }
                [region, acct, "function", name] if is_region(region) && is_account(acct) => {
                    (Some(*acct), Some(*region), *name, None)
                }
                [region, acct, "function", name, q] if is_region(region) && is_account(acct) => {
                    (Some(*acct), Some(*region), *name, Some(*q))
                }
                ["function", name] => (None, None, *name, None),
                _ => return Err(pattern_error()),
            }
        };
        if !is_name(name) || !qualifier.is_none_or(is_qualifier_text) {
            return Err(pattern_error());
        }
        let qualifier = match qualifier {
            Some(q) => Some(Qualifier::parse(q)?),
            None => None,
        };
        Ok(FunctionRef {
            name: name.to_string(),
            qualifier,
            account: account.map(str::to_string),
            region: region.map(str::to_string),
        })
    }

    /// Merges the qualifier derived from the name with one given separately
    /// (the `Qualifier` query parameter), as AWS does.
    pub fn with_explicit_qualifier(
        mut self,
        explicit: Option<&str>,
    ) -> Result<FunctionRef, AwsError> {
        let Some(explicit) = explicit else {
            return Ok(self);
        };
        let explicit = Qualifier::parse(explicit)?;
        match &self.qualifier {
            Some(derived) if *derived != explicit => Err(AwsError::invalid_parameter(
                "The derived qualifier from the function name does not match the specified qualifier.",
            )),
            _ => {
                self.qualifier = Some(explicit);
                Ok(self)
            }
        }
    }

    /// Checks that the reference points into the caller's own account and
    /// region; `operation` names the action for AWS's access-denied message.
    pub fn check_scope(
        &self,
        account: &str,
        region: &str,
        operation: &str,
    ) -> Result<(), AwsError> {
        if let Some(other) = &self.region {
            if other != region {
                return Err(AwsError::not_found(format!(
                    "Functions from '{other}' are not reachable in this region ('{region}')"
                )));
            }
        }
        if let Some(other) = &self.account {
            if other != account {
                let arn = function_arn(region, other, &self.name);
                return Err(AwsError::new(
                    ErrorCode::AccessDeniedException,
                    format!(
                        "User: arn:aws:iam::{account}:root is not authorized to perform: lambda:{operation} on resource: {arn} because no resource-based policy allows the lambda:{operation} action"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `arn:aws:lambda:{region}:{account}:function:{name}`
pub fn function_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:{name}")
}

/// The ARN with a qualifier, when there is one.
pub fn qualified_function_arn(
    region: &str,
    account: &str,
    name: &str,
    qualifier: Option<&Qualifier>,
) -> String {
    match qualifier {
        Some(q) => format!("{}:{}", function_arn(region, account, name), q.as_string()),
        None => function_arn(region, account, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_name_parses() {
        let r = FunctionRef::parse("my-fn_1", 140).unwrap();
        assert_eq!(r.name, "my-fn_1");
        assert_eq!(r.qualifier, None);
    }

    #[test]
    fn full_arn_with_alias_parses() {
        let r = FunctionRef::parse("arn:aws:lambda:eu-west-1:123456789012:function:f:live", 140)
            .unwrap();
        assert_eq!(r.name, "f");
        assert_eq!(r.account.as_deref(), Some("123456789012"));
        assert_eq!(r.region.as_deref(), Some("eu-west-1"));
        assert_eq!(r.qualifier, Some(Qualifier::Alias("live".into())));
    }

    #[test]
    fn partial_arn_with_version_parses() {
        let r = FunctionRef::parse("123456789012:function:f:7", 140).unwrap();
        assert_eq!(r.qualifier, Some(Qualifier::Version(7)));
        assert_eq!(r.account.as_deref(), Some("123456789012"));
    }

    #[test]
    fn name_with_latest_qualifier_parses() {
        let r = FunctionRef::parse("f:$LATEST", 140).unwrap();
        assert_eq!(r.qualifier, Some(Qualifier::Latest));
    }

    #[test]
    fn garbage_gets_the_pattern_message() {
        let err = FunctionRef::parse("invalid:function:name", 140).unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationException);
        assert!(err.message.starts_with(
            "1 validation error detected: Value 'invalid:function:name' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:"
        ));
    }

    #[test]
    fn overlong_name_gets_the_length_message() {
        let long = "a".repeat(141);
        let err = FunctionRef::parse(&long, 140).unwrap_err();
        assert!(err
            .message
            .ends_with("Member must have length less than or equal to 140"));
    }

    #[test]
    fn conflicting_qualifiers_are_refused() {
        let r = FunctionRef::parse("f:1", 140).unwrap();
        let err = r.with_explicit_qualifier(Some("2")).unwrap_err();
        assert_eq!(
            err.message,
            "The derived qualifier from the function name does not match the specified qualifier."
        );
    }

    #[test]
    fn other_region_is_not_reachable() {
        let r = FunctionRef::parse("arn:aws:lambda:ap-southeast-1:000000000000:function:f", 140)
            .unwrap();
        let err = r
            .check_scope("000000000000", "us-east-1", "GetFunction")
            .unwrap_err();
        assert_eq!(
            err.message,
            "Functions from 'ap-southeast-1' are not reachable in this region ('us-east-1')"
        );
    }

    #[test]
    fn other_account_is_denied() {
        let r =
            FunctionRef::parse("arn:aws:lambda:us-east-1:111111111111:function:f", 140).unwrap();
        let err = r
            .check_scope("000000000000", "us-east-1", "GetFunction")
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::AccessDeniedException);
    }
}

/// The six parts of `arn` (`arn:{partition}:{service}:{region}:{account}:{resource}`)
/// when its prefix, partition, service and account fit AWS's general ARN
/// pattern (`arn:aws[a-zA-Z0-9-]*:[a-zA-Z0-9-]+:…:(\d{12})?:…`); the
/// region and resource are the caller's to check.
pub fn general_arn_parts(arn: &str) -> Option<[&str; 6]> {
    let mut parts = arn.splitn(6, ':');
    let mut next = || parts.next();
    let all = [next()?, next()?, next()?, next()?, next()?, next()?];
    let [prefix, partition, service, _, account, _] = all;
    let word = |text: &str| text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let fits = prefix == "arn"
        && partition.strip_prefix("aws").is_some_and(word)
        && !service.is_empty()
        && word(service)
        && (account.is_empty()
            || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())));
    fits.then_some(all)
}

#[cfg(test)]
mod general_arn_tests {
    use super::general_arn_parts;

    #[test]
    fn general_arns_split_into_their_six_parts() {
        assert_eq!(
            general_arn_parts("arn:aws:signer:us-east-1:111111111111:/signing-profiles/p/v"),
            Some([
                "arn",
                "aws",
                "signer",
                "us-east-1",
                "111111111111",
                "/signing-profiles/p/v"
            ])
        );
        assert!(general_arn_parts("arn:aws-cn:sqs:::q").is_some());
        assert!(general_arn_parts("arn:aws:sqs:us-east-1:123:q").is_none());
        assert!(general_arn_parts("arn:gcp:sqs:us-east-1:111111111111:q").is_none());
        assert!(general_arn_parts("arn:aws::us-east-1:111111111111:q").is_none());
        assert!(general_arn_parts("arn:aws:sqs:us-east-1").is_none());
    }
}
