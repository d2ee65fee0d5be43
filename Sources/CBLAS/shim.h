#include <cblas.h>
// OpenBLAS extensions (declared in Debian's cblas.h, repeated for other layouts).
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
