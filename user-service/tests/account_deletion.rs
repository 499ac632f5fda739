//! The account-deletion outbox: DeleteAccount queues the account's ids in the same
//! transaction, a worker hands them to the eraser (retrying failures), and without an eraser
//! they stay queued.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use parley_proto::user::v1 as pb;
use parley_service_kit::access_token::{TokenVerifier, UserServiceKeySource};
use parley_testkit::wait::eventually;
use user_service::Config;
use user_service::account_deletion::{AccountDataEraser, AccountDeletion};

/// Fails its first `failures` calls (UNAVAILABLE), then records what it erased.
#[derive(Default)]
struct FlakyEraser {
    failures: Mutex<usize>,
    calls: Mutex<usize>,
    erased: Mutex<Vec<AccountDeletion>>,
}

#[tonic::async_trait]
impl AccountDataEraser for FlakyEraser {
    fn name(&self) -> &str {
        "test-eraser"
    }

    async fn erase(&self, deletion: &AccountDeletion) -> Result<(), tonic::Status> {
        *self.calls.lock().unwrap() += 1;
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(tonic::Status::unavailable("chat-service is restarting"));
        }
        self.erased.lock().unwrap().push(deletion.clone());
        Ok(())
    }
}

async fn delete(client: &mut Client, access_token: &str, password: &str) {
    client
        .delete_account(authed(
            pb::DeleteAccountRequest {
                password: password.into(),
            },
            access_token,
        ))
        .await
        .unwrap();
}

parley_testkit::on_every_backend!(
    a_deleted_account_is_delivered_to_the_eraser_despite_failures,
    |db_url: String| async move {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(&db_url, dir.path().to_path_buf());
        let eraser = Arc::new(FlakyEraser {
            failures: Mutex::new(1),
            ..FlakyEraser::default()
        });
        config.account_data_eraser = Some(eraser.clone());
        config.account_deletion_interval = Duration::from_millis(50);
        let mailer = user_service::test_support::RecordingMailer::new();
        config.mailer = Arc::new(mailer.clone());
        let server = TestServer::start_with(config, mailer).await;
        let mut client = server.client().await;
        let verifier = TokenVerifier::with_source(Arc::new(UserServiceKeySource::new(server.channel().await)));
        let uma = register(&mut client, "uma", "uma password", None).await;
        let uma_id = verifier.verify(&uma.access_token).await.unwrap();
        let vic = register(&mut client, "vic", "vic password", None).await;

        delete(&mut client, &uma.access_token, "uma password").await;
        let erased = eventually("the deletion delivered", Duration::from_secs(10), || async {
            eraser.erased.lock().unwrap().first().cloned()
        })
        .await;
        assert_eq!(erased.user_id, uma_id.user_id);
        assert_eq!(erased.account_id, uma_id.account_id);
        assert_eq!(*eraser.calls.lock().unwrap(), 2, "one failure, one retry");
        let db = server.database().await;
        eventually("the delivered row removed", Duration::from_secs(5), || {
            let db = db.clone();
            async move { (count_rows(&db, "account_deletions").await == 0).then_some(()) }
        })
        .await;
        // Nobody else was touched.
        client
            .get_me(authed(pb::GetMeRequest {}, &vic.access_token))
            .await
            .unwrap();
        assert_eq!(eraser.erased.lock().unwrap().len(), 1);
        server.stop().await;
    }
);

parley_testkit::on_every_backend!(without_an_eraser_deletions_stay_queued, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    let wes = register(&mut client, "wes", "wes password", None).await;
    delete(&mut client, &wes.access_token, "wes password").await;
    let db = server.database().await;
    let queued: Vec<(i64, String, i64)> = sqlx::query_as("SELECT user_id, account_id, attempts FROM account_deletions")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0, wes.user.as_ref().unwrap().id);
    assert_eq!(queued[0].2, 0);
    assert_eq!(count_rows(&db, "users").await, 0);
    server.stop().await;
});
