//! Runtime identifiers Strato runs, and the families that decide how an
//! instance is started.

use std::fmt;
use std::str::FromStr;

use crate::error::AwsError;

/// A Lambda runtime identifier that Strato can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Nodejs18,
    Nodejs20,
    Nodejs22,
    Nodejs24,
    Python39,
    Python310,
    Python311,
    Python312,
    Python313,
    Python314,
    Java11,
    Java17,
    Java21,
    Java25,
    Provided,
    ProvidedAl2,
    ProvidedAl2023,
    /// Accepted as another name for an OS-only runtime: a Go binary named `bootstrap`.
    Go1x,
}

/// How an instance of a runtime is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeFamily {
    Node,
    Python,
    Java,
    /// The zip's own `bootstrap` executable is the runtime.
    OsOnly,
}

impl Runtime {
    pub const ALL: [Runtime; 18] = [
        Runtime::Nodejs18,
        Runtime::Nodejs20,
        Runtime::Nodejs22,
        Runtime::Nodejs24,
        Runtime::Python39,
        Runtime::Python310,
        Runtime::Python311,
        Runtime::Python312,
        Runtime::Python313,
        Runtime::Python314,
        Runtime::Java11,
        Runtime::Java17,
        Runtime::Java21,
        Runtime::Java25,
        Runtime::Provided,
        Runtime::ProvidedAl2,
        Runtime::ProvidedAl2023,
        Runtime::Go1x,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Nodejs18 => "nodejs18.x",
            Runtime::Nodejs20 => "nodejs20.x",
            Runtime::Nodejs22 => "nodejs22.x",
            Runtime::Nodejs24 => "nodejs24.x",
            Runtime::Python39 => "python3.9",
            Runtime::Python310 => "python3.10",
            Runtime::Python311 => "python3.11",
            Runtime::Python312 => "python3.12",
            Runtime::Python313 => "python3.13",
            Runtime::Python314 => "python3.14",
            Runtime::Java11 => "java11",
            Runtime::Java17 => "java17",
            Runtime::Java21 => "java21",
            Runtime::Java25 => "java25",
            Runtime::Provided => "provided",
            Runtime::ProvidedAl2 => "provided.al2",
            Runtime::ProvidedAl2023 => "provided.al2023",
            Runtime::Go1x => "go1.x",
        }
    }

    pub fn family(self) -> RuntimeFamily {
        match self {
            Runtime::Nodejs18 | Runtime::Nodejs20 | Runtime::Nodejs22 | Runtime::Nodejs24 => {
                RuntimeFamily::Node
            }
            Runtime::Python39
            | Runtime::Python310
            | Runtime::Python311
            | Runtime::Python312
            | Runtime::Python313
            | Runtime::Python314 => RuntimeFamily::Python,
            Runtime::Java11 | Runtime::Java17 | Runtime::Java21 | Runtime::Java25 => {
                RuntimeFamily::Java
            }
            Runtime::Provided | Runtime::ProvidedAl2 | Runtime::ProvidedAl2023 | Runtime::Go1x => {
                RuntimeFamily::OsOnly
            }
        }
    }

    /// Managed runtimes need a handler; OS-only runtimes ignore it.
    pub fn requires_handler(self) -> bool {
        self.family() != RuntimeFamily::OsOnly
    }

    /// Parses a runtime named in a request, answering as AWS does for names it
    /// has retired and for names it never had.
    pub fn parse_request(value: &str) -> Result<Runtime, AwsError> {
        if let Ok(runtime) = value.parse() {
            return Ok(runtime);
        }
        if RETIRED.contains(&value) {
            return Err(AwsError::invalid_parameter(format!(
                "The runtime parameter of {value} is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions."
            )));
        }
        let supported: Vec<&str> = Runtime::ALL.iter().map(|r| r.as_str()).collect();
        Err(AwsError::invalid_parameter(format!(
            "Value {value} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [{}] or be a valid ARN",
            supported.join(", ")
        )))
    }
}

/// Runtimes AWS has retired for create and update.
const RETIRED: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs4.3-edge",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "java8",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "ruby2.5",
    "ruby2.7",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown runtime {0}")]
pub struct UnknownRuntime(pub String);

impl FromStr for Runtime {
    type Err = UnknownRuntime;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Runtime::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRuntime(s.to_string()))
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Runtime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Runtime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runtime_round_trips_through_its_name() {
        for r in Runtime::ALL {
            assert_eq!(r.as_str().parse::<Runtime>(), Ok(r));
        }
    }

    #[test]
    fn retired_runtime_gets_aws_message() {
        let err = Runtime::parse_request("nodejs14.x").unwrap_err();
        assert!(err
            .message
            .starts_with("The runtime parameter of nodejs14.x is no longer supported"));
    }

    #[test]
    fn unknown_runtime_lists_the_supported_set() {
        let err = Runtime::parse_request("cobol").unwrap_err();
        assert!(err.message.starts_with("Value cobol at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [nodejs18.x,"));
        assert!(err.message.ends_with("] or be a valid ARN"));
    }
}
