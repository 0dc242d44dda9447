//! Kinesis errors and how they go on the wire: `{"__type":"<Code>","message":"…"}` in the
//! request's own format, which is what botocore and the Java SDKs parse.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use rand::Rng;

use super::value::{Format, Value, encode};
use crate::stream::log::LogError;

/// The error codes clients branch on. `__type` carries [`ErrorCode::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ResourceNotFound,
    ResourceInUse,
    InvalidArgument,
    Validation,
    Serialization,
    UnknownOperation,
    ProvisionedThroughputExceeded,
    ExpiredIterator,
    ExpiredNextToken,
    LimitExceeded,
    MissingAuthenticationToken,
    IncompleteSignature,
    /// Also used for skewed or expired signatures, as AWS does.
    InvalidSignature,
    /// An access key id that is not configured.
    UnrecognizedClient,
    AccessDenied,
    InternalFailure,
    ServiceUnavailable,
}

impl ErrorCode {
    /// The name clients see in `__type` and `x-amzn-ErrorType`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::ResourceInUse => "ResourceInUseException",
            Self::InvalidArgument => "InvalidArgumentException",
            Self::Validation => "ValidationException",
            Self::Serialization => "SerializationException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            Self::ExpiredIterator => "ExpiredIteratorException",
            Self::ExpiredNextToken => "ExpiredNextTokenException",
            Self::LimitExceeded => "LimitExceededException",
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::IncompleteSignature => "IncompleteSignatureException",
            Self::InvalidSignature => "InvalidSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::AccessDenied => "AccessDeniedException",
            Self::InternalFailure => "InternalFailure",
            Self::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// 400 for everything the client caused, so botocore does not retry what cannot succeed;
    /// 5xx only where a retry may help.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InternalFailure => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            // As AWS answers a request that carries no credentials at all.
            Self::MissingAuthenticationToken => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed request: the code and the human-readable message sent back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct KinesisError {
    pub code: ErrorCode,
    pub message: String,
}

impl KinesisError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The error response, in the format the request used (JSON when it could not be told).
    pub fn into_response(self, format: Format) -> Response<Bytes> {
        let body = Value::Map(vec![
            ("__type".into(), Value::Str(self.code.as_str().to_owned())),
            ("message".into(), Value::Str(self.message)),
        ]);
        let mut response = respond(self.code.status(), format, encode(format, &body));
        // AWS appends the error's documentation URL after the colon; clients only read the
        // part before it.
        if let Ok(value) = HeaderValue::from_str(&format!("{}:", self.code.as_str())) {
            response.headers_mut().insert("x-amzn-errortype", value);
        }
        response
    }
}

/// A failure of the server itself, as a client may see it: a fixed message and an incident
/// id. The detail (file paths, OS errors) goes to the server log under that id, never into
/// a response: a client has no use for the server's layout, and an attacker would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    id: String,
    /// The stream cluster did not take the records (ServiceUnavailable, worth a retry).
    unavailable: bool,
}

impl Incident {
    /// Logs `detail` at `error!` under a new incident id.
    pub fn report(detail: &dyn std::fmt::Display) -> Incident {
        let id = hex::encode(rand::random::<[u8; 4]>());
        tracing::error!(incident = %id, "stream API internal failure: {detail}");
        Incident {
            id,
            unavailable: false,
        }
    }

    /// [`Incident::report`] of a stream cluster that could not be reached.
    pub fn unavailable(detail: &dyn std::fmt::Display) -> Incident {
        Incident {
            unavailable: true,
            ..Incident::report(detail)
        }
    }

    /// [`Incident::unavailable`] when the log's upstream did not take the records, else
    /// [`Incident::report`].
    pub fn of_log(e: &LogError, detail: &dyn std::fmt::Display) -> Incident {
        match e {
            LogError::Unavailable(_) => Incident::unavailable(detail),
            _ => Incident::report(detail),
        }
    }

    /// The error code a record or request it failed gets.
    pub fn code(&self) -> ErrorCode {
        if self.unavailable {
            ErrorCode::ServiceUnavailable
        } else {
            ErrorCode::InternalFailure
        }
    }
}

impl std::fmt::Display for Incident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.unavailable {
            write!(
                f,
                "The stream cluster is unavailable and nothing was acknowledged; retry \
                 (incident {}, the server log has the details).",
                self.id
            )
        } else {
            write!(
                f,
                "Internal service failure (incident {}); the server log has the details.",
                self.id
            )
        }
    }
}

impl From<Incident> for KinesisError {
    fn from(incident: Incident) -> KinesisError {
        KinesisError::new(incident.code(), incident.to_string())
    }
}

/// A 200 response. `None` is for the operations with no output (CreateStream, DeleteStream,
/// IncreaseStreamRetentionPeriod), which answer with an empty body as kinesalite does.
pub fn success(format: Format, output: Option<&Value>) -> Response<Bytes> {
    let body = output.map_or_else(Bytes::new, |value| encode(format, value));
    respond(StatusCode::OK, format, body)
}

fn respond(status: StatusCode, format: Format, body: Bytes) -> Response<Bytes> {
    let length = HeaderValue::from(body.len());
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::CONTENT_LENGTH, length);
    if let Ok(id) = HeaderValue::from_str(&request_id()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// A random id shaped like AWS's (a version-4 UUID), which boto3 shows as
/// `ResponseMetadata.RequestId`.
pub fn request_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_carries_code_message_and_headers() {
        let err = KinesisError::new(ErrorCode::ResourceNotFound, "Stream logs not found.");
        let response = err.into_response(Format::Json);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.body().as_ref(),
            br#"{"__type":"ResourceNotFoundException","message":"Stream logs not found."}"#
        );
        let headers = response.headers();
        assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
        assert_eq!(headers["x-amzn-errortype"], "ResourceNotFoundException:");
        assert_eq!(headers["content-length"], response.body().len().to_string());
        let id = headers["x-amzn-requestid"].to_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
    }

    #[test]
    fn error_response_in_cbor_is_the_same_map() {
        let response =
            KinesisError::new(ErrorCode::InternalFailure, "boom").into_response(Format::Cbor);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()["content-type"],
            "application/x-amz-cbor-1.1"
        );
        let decoded: ciborium::Value = ciborium::from_reader(response.body().as_ref()).unwrap();
        let ciborium::Value::Map(entries) = decoded else {
            panic!("not a map: {decoded:?}");
        };
        assert_eq!(
            entries,
            vec![
                ("__type".into(), "InternalFailure".into()),
                ("message".into(), "boom".into())
            ]
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(
            ErrorCode::ServiceUnavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ErrorCode::ProvisionedThroughputExceeded.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ErrorCode::MissingAuthenticationToken.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            ErrorCode::IncompleteSignature.status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn empty_success_has_zero_length() {
        let response = success(Format::Json, None);
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.body().is_empty());
        assert_eq!(response.headers()["content-length"], "0");
        assert!(response.headers().contains_key("x-amzn-requestid"));
    }
}
