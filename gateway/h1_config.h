/* The HTTP/1.1 server's configuration keys (conf/ schema) for struct h1_limits. */
#ifndef FG_GATEWAY_H1_CONFIG_H
#define FG_GATEWAY_H1_CONFIG_H

#include "conf/conf.h"

/* Keys of the `limits:` section: max_header_size, max_headers, max_url_size,
 * max_trailer_size, header_timeout, idle_timeout, body_timeout, write_timeout,
 * max_connections, read_buffer, write_low_water. Defaults equal h1_limits_default(). */
extern const struct conf_key h1_limits_keys[];

#endif
