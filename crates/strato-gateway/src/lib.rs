//! API Gateway: the front door that routes plain HTTP requests to functions
//! and to HTTP backends. HTTP APIs (`apigatewayv2`, payload 2.0 and 1.0),
//! REST APIs (`apigateway`, payload 1.0), stages, throttling and function URLs.

pub mod throttle;
