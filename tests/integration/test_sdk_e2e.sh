#!/usr/bin/env bash
# Issue 3 §7: the official openai npm SDK gets the same results through tollgate as straight
# from the fake upstream (chat stream and non-stream, responses, embeddings, models).
source "$(dirname "$0")/lib.sh"
start_fake
DB_URL=$(new_db sdk)
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY
node "$TG_SOURCE_DIR/tests/node/sdk_e2e.mjs" "$TG_URL" "$FAKE_URL" "$SERVICE_KEY"
n=$(request_logs | jq -r 'select(.route=="/v1/chat/completions") | .user' | sort -u)
assert_eq sdk-user "$n" "the SDK's requests were billed to its user"
