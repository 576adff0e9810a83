//! Tech-account administration against the real Samba AD DC: create, set the password, enable,
//! group membership, disable and delete, each repeated to show it is idempotent, and the two
//! kinds of failure (refused, unreachable).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Service, Tree};
use latchkey_ldap::admin::{AdminError, DirectoryAdmin};
use latchkey_ldap::{BindError, authenticate};
use secrecy::SecretString;

#[tokio::test]
async fn tech_account_lifecycle_is_idempotent() {
    let Some(service) = Service::samba() else { return };
    let mut tree = Tree::new(&service).await;
    let ou = tree.add_ou("tech", None).await;
    let group = tree.add_group(&tree.name("adm"), &[]).await;
    let config = service.config(&tree.dn);
    let sam = tree.name("tech-");
    let mut admin = DirectoryAdmin::connect(&config).await.unwrap();

    assert_eq!(admin.find_account(&sam).await.unwrap(), None);
    let dn = admin.create_account(&ou, &sam, "latchkey tech account").await.unwrap();
    // Creating it again is fine.
    assert_eq!(admin.create_account(&ou, &sam, "latchkey tech account").await.unwrap(), dn);
    let found = admin.find_account(&sam).await.unwrap().unwrap();
    assert!(found.disabled);
    assert!(found.dn.eq_ignore_ascii_case(&dn));

    // A weak password is refused with a clear error naming the policy, never the password.
    let weak = admin.set_password(&dn, &SecretString::from("abc")).await.unwrap_err();
    assert!(matches!(&weak, AdminError::Refused(m) if m.contains("password policy") && !m.contains("abc")), "{weak}");
    assert!(!weak.is_retryable());

    let password = SecretString::from("Tmp-Passw0rd!x9Q");
    admin.set_password(&dn, &password).await.unwrap();
    admin.set_enabled(&dn, true).await.unwrap();
    admin.add_member(&group, &dn).await.unwrap();
    admin.add_member(&group, &dn).await.unwrap();
    assert_eq!(admin.group_dn(&tree.name("adm")).await.unwrap().to_lowercase(), group.to_lowercase());
    let found = admin.find_account(&sam).await.unwrap().unwrap();
    assert!(!found.disabled);
    assert!(found.member_of.iter().any(|g| g.eq_ignore_ascii_case(&group)), "{found:?}");
    authenticate(&config, &sam, &password).await.unwrap();

    admin.remove_member(&group, &dn).await.unwrap();
    admin.remove_member(&group, &dn).await.unwrap();
    admin.set_enabled(&dn, false).await.unwrap();
    admin.set_enabled(&dn, false).await.unwrap();
    let found = admin.find_account(&sam).await.unwrap().unwrap();
    assert!(found.disabled);
    assert!(found.member_of.is_empty(), "{found:?}");
    assert_eq!(authenticate(&config, &sam, &password).await.unwrap_err(), BindError::InvalidCredentials);

    admin.delete_account(&dn).await.unwrap();
    admin.delete_account(&dn).await.unwrap();
    assert_eq!(admin.find_account(&sam).await.unwrap(), None);
    // A group that does not exist is a refusal.
    assert!(matches!(admin.group_dn("no-such-group-xyz").await, Err(AdminError::Refused(_))));
    admin.close().await;
    tree.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_directory_is_retryable() {
    let Some(service) = Service::samba() else { return };
    let mut config = service.config(&service.base_dn);
    // Nothing listens on port 1.
    config.url = "ldaps://127.0.0.1:1".into();
    config.connect_timeout_secs = Some(2);
    let e = DirectoryAdmin::connect(&config).await.err().unwrap();
    assert!(e.is_retryable(), "{e}");
}
