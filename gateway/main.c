/* floodgate: the gateway daemon. Wires the modules together (placeholder until the S3 path
 * lands). */
#include <stdio.h>

int main(void)
{
    printf("floodgate %s\n", FG_VERSION);
    return 0;
}
