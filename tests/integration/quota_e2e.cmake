# Quotas end to end (issue 5): tollgate + fake upstream + PostgreSQL + Redis, real clients from
# tests/node. Tests that stop, pause or flush Redis start their own redis-server (lib_quota.sh).
foreach(t block periods kill9 rebuild notice webhook api clients)
  tg_integration_test(quota_${t} COMMAND ${TG_INTEG_DIR}/test_quota_${t}.sh TIMEOUT 300)
endforeach()
# timing-sensitive (200 concurrent streams; the 100 ms answer of a 503): never in parallel
foreach(t concurrency failmode)
  tg_integration_test(quota_${t} COMMAND ${TG_INTEG_DIR}/test_quota_${t}.sh TIMEOUT 300 SERIAL)
endforeach()
# reservation size and cap; notice never billed without usage; a team block releases the member's
# reservation; the estimate-vs-usage disagreement metric (issue 9 §3)
foreach(t reserve notice_nousage team_release estimate_metric)
  tg_integration_test(quota_${t} COMMAND ${TG_INTEG_DIR}/test_quota_${t}.sh TIMEOUT 300)
endforeach()
# a live tollgate under libfaketime crosses the local midnight that starts a DST change day
tg_integration_test(quota_boundary COMMAND ${TG_INTEG_DIR}/test_quota_boundary.sh TIMEOUT 300)
