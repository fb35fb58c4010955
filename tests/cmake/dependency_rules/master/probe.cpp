#include <hio/common/error.hpp>  // allowed
#include <hio/worker/channel.hpp>  // not allowed
