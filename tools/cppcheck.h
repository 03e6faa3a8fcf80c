/* What cppcheck needs to read the code without the system headers
 * (make lint): the library macros it would otherwise call unknown. */
#define json_array_foreach(array, index, value) \
        for (index = 0; index < json_array_size(array) && (value = json_array_get(array, index)); index++)
#define json_object_foreach(object, key, value) for (key = 0; key;)
#define JADA_FIELDS(...) ((const char *const *)0)
