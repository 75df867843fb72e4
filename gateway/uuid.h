/* Unique ids shaped as RFC 4122 version-4 UUIDs, lowercase
 * ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"): unique across threads, processes and hosts, not
 * secret (a per-thread random base and a counter; see uuid.c). Thread-safe, fork-safe. */
#ifndef FG_GATEWAY_UUID_H
#define FG_GATEWAY_UUID_H

void gw_uuid(char out[37]);

#endif
