//! The SQL shared by the sqlx backends. SQLite and PostgreSQL both accept `$N` parameters,
//! `RETURNING` and `ON CONFLICT`, so one text serves both; only the schema files differ.

/// Columns of `users` (aliased `u`), in the order `user_from_row` reads them. A macro so
/// that queries stay `&'static str` literals built with `concat!`.
macro_rules! user_columns {
    () => {
        "u.id, u.email, u.hashed_password, u.reset_token_hash, u.reset_expires_at_ms, \
         u.created_at_ms"
    };
}

/// The session-and-user join, up to the token-hash comparison (`... WHERE s.token_hash`):
/// user columns first, then the session's from column 6, as `session_from_row(row, 6)` reads
/// them. Shared by the single lookup here and SQLite's batched one (`IN (...)`).
macro_rules! session_join {
    () => {
        concat!(
            "SELECT ",
            user_columns!(),
            ", s.token_hash, s.user_id, s.created_at_ms, s.last_seen_ms, s.expires_at_ms \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash"
        )
    };
}

/// Implements [`Store`](crate::Store) for a type with a `pool: sqlx::Pool<$db>` field.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $row:ty) => {
        fn user_from_row(row: &$row) -> Result<$crate::user::User, $crate::store::StoreError> {
            use sqlx::Row as _;
            let reset_hash: Option<Vec<u8>> = row.try_get(3).map_err($crate::store::map_sqlx)?;
            let reset_expires: Option<i64> = row.try_get(4).map_err($crate::store::map_sqlx)?;
            let reset_token = match (reset_hash, reset_expires) {
                (Some(hash), Some(expires_at_ms)) => Some($crate::user::ResetToken {
                    hash: $crate::token::TokenHash::from_slice(&hash).ok_or_else(|| {
                        $crate::store::StoreError::Backend("corrupt reset token hash".into())
                    })?,
                    expires_at_ms,
                }),
                _ => None,
            };
            Ok($crate::user::User {
                id: $crate::user::UserId(row.try_get(0).map_err($crate::store::map_sqlx)?),
                email: row.try_get(1).map_err($crate::store::map_sqlx)?,
                hashed_password: row.try_get(2).map_err($crate::store::map_sqlx)?,
                reset_token,
                created_at_ms: row.try_get(5).map_err($crate::store::map_sqlx)?,
            })
        }

        fn session_from_row(
            row: &$row,
            first: usize,
        ) -> Result<$crate::user::Session, $crate::store::StoreError> {
            use sqlx::Row as _;
            let hash: Vec<u8> = row.try_get(first).map_err($crate::store::map_sqlx)?;
            Ok($crate::user::Session {
                token_hash: $crate::token::TokenHash::from_slice(&hash).ok_or_else(|| {
                    $crate::store::StoreError::Backend("corrupt session token hash".into())
                })?,
                user_id: $crate::user::UserId(
                    row.try_get(first + 1).map_err($crate::store::map_sqlx)?,
                ),
                created_at_ms: row.try_get(first + 2).map_err($crate::store::map_sqlx)?,
                last_seen_ms: row.try_get(first + 3).map_err($crate::store::map_sqlx)?,
                expires_at_ms: row.try_get(first + 4).map_err($crate::store::map_sqlx)?,
            })
        }

        fn counter_from_row(row: &$row) -> Result<$crate::user::Counter, $crate::store::StoreError> {
            use sqlx::Row as _;
            Ok($crate::user::Counter {
                count: $crate::store::count_from_db(
                    row.try_get(0).map_err($crate::store::map_sqlx)?,
                )?,
                window_ends_ms: row.try_get(1).map_err($crate::store::map_sqlx)?,
            })
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn add_user(
                &self,
                user: $crate::user::NewUser,
            ) -> Result<$crate::user::User, $crate::store::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "INSERT INTO users (email, hashed_password, created_at_ms) \
                     VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(&user.email)
                .bind(&user.hashed_password)
                .bind(user.created_at_ms)
                .fetch_one(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok($crate::user::User {
                    id: $crate::user::UserId(row.try_get(0).map_err($crate::store::map_sqlx)?),
                    email: user.email,
                    hashed_password: user.hashed_password,
                    reset_token: None,
                    created_at_ms: user.created_at_ms,
                })
            }

            async fn find_user_by(
                &self,
                lookup: $crate::user::UserLookup<'_>,
            ) -> Result<Option<$crate::user::User>, $crate::store::StoreError> {
                use $crate::user::UserLookup;
                let row = match lookup {
                    UserLookup::Id(id) => {
                        sqlx::query(concat!("SELECT ", user_columns!(), " FROM users u WHERE u.id = $1"))
                            .bind(id.0)
                            .fetch_optional(&self.pool)
                            .await
                    }
                    UserLookup::Email(email) => {
                        sqlx::query(concat!("SELECT ", user_columns!(), " FROM users u WHERE u.email = $1"))
                            .bind(email)
                            .fetch_optional(&self.pool)
                            .await
                    }
                    UserLookup::ResetToken(hash) => sqlx::query(concat!(
                        "SELECT ",
                        user_columns!(),
                        " FROM users u WHERE u.reset_token_hash = $1"
                    ))
                    .bind(&hash.as_bytes()[..])
                    .fetch_optional(&self.pool)
                    .await,
                }
                .map_err($crate::store::map_sqlx)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn update_user(
                &self,
                id: $crate::user::UserId,
                update: $crate::user::UserUpdate,
            ) -> Result<(), $crate::store::StoreError> {
                // Each column is either kept (flag false) or set from its parameter, so one
                // prepared statement serves every combination of fields.
                let (set_reset, reset) = match update.reset_token {
                    None => (false, None),
                    Some(token) => (true, token),
                };
                let result = sqlx::query(
                    "UPDATE users SET \
                       hashed_password = CASE WHEN $2 THEN $3 ELSE hashed_password END, \
                       reset_token_hash = CASE WHEN $4 THEN $5 ELSE reset_token_hash END, \
                       reset_expires_at_ms = CASE WHEN $4 THEN $6 ELSE reset_expires_at_ms END \
                     WHERE id = $1",
                )
                .bind(id.0)
                .bind(update.hashed_password.is_some())
                .bind(update.hashed_password.as_deref().unwrap_or(""))
                .bind(set_reset)
                .bind(reset.as_ref().map(|r| r.hash.as_bytes().to_vec()))
                .bind(reset.as_ref().map(|r| r.expires_at_ms))
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                if result.rows_affected() == 0 {
                    return Err($crate::store::StoreError::NotFound);
                }
                Ok(())
            }

            async fn complete_password_reset(
                &self,
                token: &$crate::token::TokenHash,
                now_ms: i64,
                hashed_password: &str,
            ) -> Result<Option<$crate::user::UserId>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "UPDATE users SET hashed_password = $3, reset_token_hash = NULL, \
                       reset_expires_at_ms = NULL \
                     WHERE reset_token_hash = $1 AND reset_expires_at_ms > $2 RETURNING id",
                )
                .bind(&token.as_bytes()[..])
                .bind(now_ms)
                .bind(hashed_password)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                row.map(|r| r.try_get(0).map($crate::user::UserId))
                    .transpose()
                    .map_err($crate::store::map_sqlx)
            }

            async fn create_session(
                &self,
                session: $crate::user::Session,
                replace_others: bool,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await.map_err($crate::store::map_sqlx)?;
                if replace_others {
                    // Lock the user's row first, so concurrent single-session logins for one
                    // user (from several instances) run one after another: each one's delete
                    // then sees the session the previous one inserted, and one remains.
                    // A no-op UPDATE, because SQLite has no `SELECT ... FOR UPDATE`.
                    let locked = sqlx::query(
                        "UPDATE users SET hashed_password = hashed_password WHERE id = $1",
                    )
                    .bind(session.user_id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                    if locked.rows_affected() == 0 {
                        return Err($crate::store::StoreError::NotFound);
                    }
                    // Keep a row holding this very token hash, so the insert below collides
                    // with it (Duplicate, transaction rolled back) instead of the delete
                    // making room for a silent overwrite.
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
                        .bind(session.user_id.0)
                        .bind(&session.token_hash.as_bytes()[..])
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::store::map_sqlx)?;
                }
                sqlx::query(
                    "INSERT INTO sessions \
                       (token_hash, user_id, created_at_ms, last_seen_ms, expires_at_ms) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&session.token_hash.as_bytes()[..])
                .bind(session.user_id.0)
                .bind(session.created_at_ms)
                .bind(session.last_seen_ms)
                .bind(session.expires_at_ms)
                .execute(&mut *tx)
                .await
                .map_err($crate::store::map_sqlx)?;
                tx.commit().await.map_err($crate::store::map_sqlx)
            }

            async fn find_session(
                &self,
                token: &$crate::token::TokenHash,
            ) -> Result<
                Option<($crate::user::Session, $crate::user::User)>,
                $crate::store::StoreError,
            > {
                let row = sqlx::query(concat!(session_join!(), " = $1"))
                .bind(&token.as_bytes()[..])
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some((session_from_row(&row, 6)?, user_from_row(&row)?))),
                }
            }

            async fn touch_session(
                &self,
                token: &$crate::token::TokenHash,
                now_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("UPDATE sessions SET last_seen_ms = $2 WHERE token_hash = $1")
                    .bind(&token.as_bytes()[..])
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(())
            }

            async fn delete_session(
                &self,
                token: &$crate::token::TokenHash,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(&token.as_bytes()[..])
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(result.rows_affected() > 0)
            }

            async fn delete_user_sessions(
                &self,
                user_id: $crate::user::UserId,
            ) -> Result<u64, $crate::store::StoreError> {
                let result = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id.0)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(result.rows_affected())
            }

            async fn delete_expired_sessions(
                &self,
                now_ms: i64,
                idle_cutoff_ms: i64,
            ) -> Result<u64, $crate::store::StoreError> {
                let result = sqlx::query(
                    "DELETE FROM sessions WHERE expires_at_ms <= $1 OR last_seen_ms <= $2",
                )
                .bind(now_ms)
                .bind(idle_cutoff_ms)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(result.rows_affected())
            }

            async fn increment_counter(
                &self,
                key: &str,
                now_ms: i64,
                window_ms: i64,
            ) -> Result<$crate::user::Counter, $crate::store::StoreError> {
                let row = sqlx::query(
                    "INSERT INTO counters (key, count, window_ends_ms) VALUES ($1, 1, $3) \
                     ON CONFLICT (key) DO UPDATE SET \
                       count = CASE WHEN counters.window_ends_ms <= $2 THEN 1 \
                                    ELSE counters.count + 1 END, \
                       window_ends_ms = CASE WHEN counters.window_ends_ms <= $2 THEN $3 \
                                    ELSE counters.window_ends_ms END \
                     RETURNING count, window_ends_ms",
                )
                .bind(key)
                .bind(now_ms)
                .bind(now_ms.saturating_add(window_ms))
                .fetch_one(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                counter_from_row(&row)
            }

            async fn get_counter(
                &self,
                key: &str,
                now_ms: i64,
            ) -> Result<Option<$crate::user::Counter>, $crate::store::StoreError> {
                let row = sqlx::query(
                    "SELECT count, window_ends_ms FROM counters \
                     WHERE key = $1 AND window_ends_ms > $2",
                )
                .bind(key)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                row.as_ref().map(counter_from_row).transpose()
            }

            async fn release_counter(
                &self,
                key: &str,
                window_ends_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "UPDATE counters SET count = count - 1 \
                     WHERE key = $1 AND window_ends_ms = $2 AND count > 0",
                )
                .bind(key)
                .bind(window_ends_ms)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(())
            }

            async fn reset_counter(&self, key: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query("DELETE FROM counters WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_sql_store;
pub(crate) use session_join;
pub(crate) use user_columns;
