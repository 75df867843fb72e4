/* Fuzz target: arbitrary bytes as a service body of the admin API (JSON or YAML), through
 * notify_service_parse(); an accepted service is also turned to JSON, parsed back (it must be
 * accepted again with the same rev) and matched against a key. Must not crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const struct notify_service *svc)
{
    char *json = notify_service_to_json(svc, true);
    struct notify_service again;
    struct conf_error err;
    char rev[17], rev_again[17];

    if (notify_service_parse(json, strlen(json), &again, &err) != 0)
        abort(); /* what we print we must read */
    notify_service_rev(svc, rev);
    notify_service_rev(&again, rev_again);
    if (strcmp(rev, rev_again) != 0)
        abort();
    notify_service_free(&again);
    free(json);
    free(notify_service_to_json(svc, false));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct notify_service svc;
    struct conf_error err;

    if (notify_service_parse((const char *)data, size, &svc, &err) == 0) {
        round_trip(&svc);
        for (size_t i = 0; i < svc.n_input; i++)
            (void)notify_input_matches(&svc.input[i], "bucket", "in/file.jpg");
    } else if (err.line < 0 || memchr(err.msg, '\0', sizeof(err.msg)) == NULL) {
        abort(); /* an error must carry a sane line and a terminated message */
    }
    notify_service_free(&svc);
    return 0;
}
