# Issue 4: identity end to end through real sockets (JWT, JWKS, rejections, personal keys,
# service key, admins, caches). Node (crypto, http) makes the tokens and serves the JWKS.
tg_integration_test(identity_jwt COMMAND ${TG_INTEG_DIR}/test_identity_jwt.sh TIMEOUT 300)
tg_integration_test(identity_jwks_url COMMAND ${TG_INTEG_DIR}/test_identity_jwks_url.sh TIMEOUT 300)
tg_integration_test(identity_reject COMMAND ${TG_INTEG_DIR}/test_identity_reject.sh TIMEOUT 300)
tg_integration_test(identity_service COMMAND ${TG_INTEG_DIR}/test_identity_service.sh TIMEOUT 300)
tg_integration_test(identity_admin COMMAND ${TG_INTEG_DIR}/test_identity_admin.sh TIMEOUT 300)
tg_integration_test(identity_cache COMMAND ${TG_INTEG_DIR}/test_identity_cache.sh TIMEOUT 300)
# hammers two instances while revoking: timing-sensitive (1 s), so never beside other tests
tg_integration_test(identity_apikey COMMAND ${TG_INTEG_DIR}/test_identity_apikey.sh TIMEOUT 300 SERIAL)
# the JWT cache seen in /metrics (hits, misses, the AUTH_CACHE_ENTRIES bound); warm users served
# with the users table locked (no database round trip in the steady state)
tg_integration_test(identity_cache_metrics COMMAND ${TG_INTEG_DIR}/test_identity_cache_metrics.sh TIMEOUT 300)
tg_integration_test(identity_nodb COMMAND ${TG_INTEG_DIR}/test_identity_nodb.sh TIMEOUT 300)
