//! API Gateway: the front door that routes plain HTTP requests to functions
//! and to HTTP backends. HTTP APIs (`apigatewayv2`, payload 2.0 and 1.0),
//! REST APIs (`apigateway`, payload 1.0), stages, throttling and function URLs.

pub mod access_log;
pub mod authorizer;
pub mod cors;
pub mod dataplane;
pub mod extract;
pub mod function_url;
pub mod header_case;
pub mod http_api;
pub mod http_backend;
pub mod invoker;
pub mod mapping_template;
pub mod metrics;
pub mod paging;
pub mod proxy;
pub mod public_url;
pub mod rest_api;
pub mod throttle;
pub mod websocket;
