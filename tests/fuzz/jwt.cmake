# JWT verification (tg_jwt_verify) with a fixed HMAC secret + RSA public key from tests/fixtures/jwt.
# The auth and JSON sources are compiled into the target (not linked from tg_auth / tg_base) so
# that with -DFUZZ=ON they get libFuzzer's coverage instrumentation.
set(TG_FUZZ_JWT_SRC ${CMAKE_SOURCE_DIR}/proxy/src/auth/jwt.c
    ${CMAKE_SOURCE_DIR}/proxy/src/auth/claims.c ${CMAKE_SOURCE_DIR}/proxy/src/auth/jwks.c
    ${CMAKE_SOURCE_DIR}/proxy/src/core/json_scan.c ${CMAKE_SOURCE_DIR}/proxy/src/core/buf.c)
tg_fuzz_target(jwt SOURCES fuzz_jwt.c ${TG_FUZZ_JWT_SRC}
               LIBS PkgConfig::LIBJWT PkgConfig::OPENSSL PkgConfig::JANSSON)
foreach(t replay_jwt fuzz_jwt)
  if(TARGET ${t})
    target_compile_definitions(${t} PRIVATE TG_FIXTURES_DIR="${CMAKE_SOURCE_DIR}/tests/fixtures")
  endif()
endforeach()
