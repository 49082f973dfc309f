#include <immintrin.h>
#include <cstdio>
#include <initializer_list>
#include <cstdint>
#include <chrono>
#include <unistd.h>
#include <sys/syscall.h>
struct alignas(64) Cfg { uint8_t palette=1, start=0; uint8_t res[14]={}; uint16_t colsb[16]={}; uint8_t rows[16]={}; };
alignas(64) static int8_t buf[64*1024];
alignas(64) static int32_t out[8][256];
int main(){
  if (syscall(SYS_arch_prctl, 0x1023, 18)) return 1;
  for (long i=0;i<(long)sizeof(buf);++i) buf[i]=(int8_t)((i*2654435761u)>>13);
  for (int R : {16, 8, 4, 1}) {
    Cfg cfg; for (int t=0;t<8;++t) { cfg.colsb[t]=64; cfg.rows[t]=16; }
    cfg.rows[1]=cfg.rows[3]=R; for (int t=4;t<8;++t) cfg.rows[t]=R;
    _tile_loadconfig(&cfg);
    _tile_loadd(0, buf, 64); _tile_loadd(2, buf+2048, 64);
    const long n = 4000000;
    auto a=std::chrono::steady_clock::now();
    for (long i=0;i<n;i+=4){ _tile_dpbssd(4,1,0); _tile_dpbssd(5,3,0); _tile_dpbssd(6,1,2); _tile_dpbssd(7,3,2);}
    double dp=std::chrono::duration<double>(std::chrono::steady_clock::now()-a).count()*1e9/n;
    a=std::chrono::steady_clock::now();
    for (long i=0;i<n;i+=4){
      _tile_loadd(0, buf + (i&15)*1024, 64); _tile_loadd(1, buf + 16384 + (i&15)*1024, 64); _tile_zero(4); _tile_dpbssd(4,1,0); _tile_stored(4, out[0], 64);
      _tile_loadd(2, buf + ((i+1)&15)*1024, 64); _tile_loadd(3, buf + 16384 + ((i+1)&15)*1024, 64); _tile_zero(5); _tile_dpbssd(5,3,2); _tile_stored(5, out[1], 64);
      _tile_loadd(0, buf + ((i+2)&15)*1024, 64); _tile_loadd(1, buf + 16384 + ((i+2)&15)*1024, 64); _tile_zero(6); _tile_dpbssd(6,1,0); _tile_stored(6, out[2], 64);
      _tile_loadd(2, buf + ((i+3)&15)*1024, 64); _tile_loadd(3, buf + 16384 + ((i+3)&15)*1024, 64); _tile_zero(7); _tile_dpbssd(7,3,2); _tile_stored(7, out[3], 64);
    }
    double st=std::chrono::duration<double>(std::chrono::steady_clock::now()-a).count()*1e9/n;
    printf("A/C rows %2d: dp %.2f ns, full step %.2f ns\n", R, dp, st);
    _tile_release();
  }
}
