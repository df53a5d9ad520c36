# auth: JWT verification, claims, JWKS, personal API keys (tg_auth).
tg_unit_test(test_claims SOURCES test_claims.c LIBS tg_auth)
tg_unit_test(test_apikey SOURCES test_apikey.c LIBS tg_auth)
tg_unit_test(test_jwks SOURCES test_jwks.c LIBS tg_auth)
tg_unit_test(test_jwt SOURCES test_jwt.c LIBS tg_auth Threads::Threads)
