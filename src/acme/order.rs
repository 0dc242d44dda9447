//! One certificate from the CA (RFC 8555 §7.4): the account (created once, then read back
//! from `data_dir`), an order for the names, each authorization proved by the configured
//! challenge, the CSR and the issued chain. Challenge answers are withdrawn whatever the
//! outcome.

use std::sync::Arc;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::PrivatePkcs8KeyDer;
use tracing::{info, warn};

use super::certs::AcmeCerts;
use super::client::CaClient;
use super::dns01::Dns01Publisher;
use super::store::{self, Store};
use crate::config::acme::{AcmeConfig, Challenge};

/// How long an order may take to become ready after its challenges are answered, and to
/// be issued after the CSR: Let's Encrypt takes seconds.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(std::time::Duration::from_millis(250))
    .backoff(1.5)
    .timeout(std::time::Duration::from_secs(90));

/// The account at the configured CA: read from `data_dir`, or registered and saved there.
///
/// # Errors
/// The CA cannot be reached or refuses, or the account file cannot be read or written.
pub async fn account(config: &AcmeConfig, store: &Store) -> Result<Account, String> {
    let client = || CaClient::new(config.ca_roots.as_deref()).map(|c| Box::new(c) as _);
    let file = store.account_file(&config.directory);
    if file.exists() {
        let text =
            std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let credentials: AccountCredentials = serde_json::from_slice(&text)
            .map_err(|e| format!("{} is not an ACME account: {e}", file.display()))?;
        return Account::builder_with_http(client()?)
            .from_credentials(credentials)
            .await
            .map_err(|e| format!("the CA at {}: {e}", config.directory));
    }
    let contact: Vec<String> = config
        .email
        .iter()
        .map(|email| format!("mailto:{email}"))
        .collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let eab = config
        .eab
        .as_ref()
        .map(|eab| ExternalAccountKey::new(eab.kid.clone(), &eab.hmac_key));
    let (account, credentials) = Account::builder_with_http(client()?)
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            config.directory.clone(),
            eab.as_ref(),
        )
        .await
        .map_err(|e| format!("registering with the CA at {}: {e}", config.directory))?;
    let json = serde_json::to_vec_pretty(&credentials)
        .map_err(|e| format!("encoding the account: {e}"))?;
    store::write_private(&file, &json).map_err(|e| e.to_string())?;
    info!(account = account.id(), file = %file.display(), "registered an ACME account");
    Ok(account)
}

/// Gets certificates from one account with one kind of challenge.
pub struct Issuer {
    pub account: Account,
    pub challenge: Challenge,
    pub certs: Arc<AcmeCerts>,
    pub dns: Option<Dns01Publisher>,
}

/// A challenge answer to withdraw once the order is done.
enum Answer {
    Alpn(String),
    Http(String),
    Dns { name: String, value: String },
}

/// An issued certificate: the chain and key as PEM.
pub struct Issued {
    pub chain: String,
    pub key: String,
}

impl Issuer {
    /// Orders a certificate for `names` and proves each of them.
    ///
    /// # Errors
    /// Any step the CA or the challenge refused, with its reason.
    pub async fn issue(&self, names: &[String]) -> Result<Issued, String> {
        let mut answers = Vec::new();
        let result = self.order(names, &mut answers).await;
        for answer in answers {
            match answer {
                Answer::Alpn(name) => self.certs.close_alpn(&name),
                Answer::Http(token) => self.certs.close_http(&token),
                Answer::Dns { name, value } => {
                    if let Some(dns) = &self.dns
                        && let Err(e) = dns.remove(&name, &value).await
                    {
                        warn!("removing the dns-01 record of {name}: {e}");
                    }
                }
            }
        }
        result
    }

    async fn order(&self, names: &[String], answers: &mut Vec<Answer>) -> Result<Issued, String> {
        let identifiers: Vec<Identifier> = names.iter().cloned().map(Identifier::Dns).collect();
        let mut order = self
            .account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| format!("new order: {e}"))?;
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(|e| format!("authorization: {e}"))?;
            match authorization.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                status => return Err(format!("an authorization is {status:?}")),
            }
            let kind = match self.challenge {
                Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
                Challenge::Http01 => ChallengeType::Http01,
                Challenge::Dns01 => ChallengeType::Dns01,
            };
            let mut challenge = authorization
                .challenge(kind.clone())
                .ok_or_else(|| format!("the CA offers no {} challenge", self.challenge.as_str()))?;
            let name = match challenge.identifier().identifier {
                Identifier::Dns(name) => name.clone(),
                other => return Err(format!("an identifier that is not a DNS name: {other:?}")),
            };
            let key_authorization = challenge.key_authorization();
            match self.challenge {
                Challenge::TlsAlpn01 => {
                    let cert = alpn_certificate(&name, key_authorization.digest().as_ref())?;
                    self.certs.open_alpn(&name, cert);
                    answers.push(Answer::Alpn(name.clone()));
                }
                Challenge::Http01 => {
                    self.certs
                        .open_http(&challenge.token, key_authorization.as_str());
                    answers.push(Answer::Http(challenge.token.clone()));
                }
                Challenge::Dns01 => {
                    let dns = self.dns.as_ref().ok_or("dns-01 without [cdn.acme] dns")?;
                    let value = key_authorization.dns_value();
                    answers.push(Answer::Dns {
                        name: name.clone(),
                        value: value.clone(),
                    });
                    dns.add(&name, &value)
                        .await
                        .map_err(|e| format!("dns-01 for {name}: {e}"))?;
                }
            }
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("{} for {name}: {e}", self.challenge.as_str()))?;
        }
        let status = order
            .poll_ready(&POLL)
            .await
            .map_err(|e| format!("waiting for validation: {e}"))?;
        if status != OrderStatus::Ready {
            let why = order
                .state()
                .error
                .as_ref()
                .map_or_else(|| format!("{status:?}"), |p| p.to_string());
            return Err(format!("the order was not validated: {why}"));
        }
        let key = order
            .finalize()
            .await
            .map_err(|e| format!("finalizing: {e}"))?;
        let chain = order
            .poll_certificate(&POLL)
            .await
            .map_err(|e| format!("downloading the certificate: {e}"))?;
        Ok(Issued { chain, key })
    }
}

/// The tls-alpn-01 certificate for `name` (RFC 8737 §3): self-signed, that one name, and
/// the critical acmeIdentifier extension holding the key authorization's SHA-256. Put
/// together without the usual key-matches-certificate check, which parses the certificate
/// with webpki, and webpki refuses a critical extension it does not know.
fn alpn_certificate(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let make = || {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()])?;
        params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
        let cert = params.self_signed(&key)?;
        Ok::<_, rcgen::Error>((cert.der().clone(), key.serialize_der()))
    };
    let fail = |e: &dyn std::fmt::Display| format!("the tls-alpn-01 certificate: {e}");
    let (cert, key) = make().map_err(|e| fail(&e))?;
    let key = PrivatePkcs8KeyDer::from(key);
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key.into())
        .map_err(|e| fail(&e))?;
    Ok(Arc::new(CertifiedKey::new(vec![cert], signing)))
}
