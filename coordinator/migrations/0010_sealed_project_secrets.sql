-- Project secrets encrypted at rest: each *_sealed column holds the 12-byte nonce followed
-- by the ChaCha20-Poly1305 ciphertext (see src/secrets.rs). SQL cannot encrypt, so the
-- clear columns of 0003 (webhook_secret, forge_token, repo_token) stay for the moment:
-- at every start the coordinator seals any clear value left there and empties it
-- (Store::seal_clear_project_secrets), and nothing writes them any more.
ALTER TABLE projects ADD COLUMN webhook_secret_sealed BLOB;
ALTER TABLE projects ADD COLUMN forge_token_sealed BLOB;
ALTER TABLE projects ADD COLUMN repo_token_sealed BLOB;
-- A private SSH key the coordinator fetches the repository with.
ALTER TABLE projects ADD COLUMN ssh_key_sealed BLOB;
