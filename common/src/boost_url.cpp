// Boost.URL's compiled part (Boost 1.81 ships it as a library, libboost_url, or as this header for one
// translation unit). Built into hio_common so that libhio_connector.so and the daemons need no Boost
// library at run time.
#include <boost/url/src.hpp>
