#include <immintrin.h>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <unistd.h>
#include <sys/syscall.h>
struct alignas(64) Cfg { uint8_t palette=1, start=0; uint8_t res[14]={}; uint16_t colsb[16]={}; uint8_t rows[16]={};
  Cfg(){ for(int t=0;t<8;++t) colsb[t]=64, rows[t]=16; } };
static const int T=2048, G=8, NB=96;
alignas(64) static int8_t A[T*G*64];
alignas(64) static int8_t Bb[NB*G*1024];
alignas(64) static float U[T*G], SC[NB*G*16];
alignas(64) static float Y[T*NB*16];
alignas(64) static int32_t ct[16][256];
static inline __attribute__((always_inline)) void epi(__m512* acc, const int32_t* c, const float* sc, const float* u) {
  __m512 vsc = _mm512_load_ps(sc);
#pragma GCC unroll 16
  for (int m=0;m<16;++m) {
    __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(c + m*16));
    acc[m] = _mm512_fmadd_ps(v, _mm512_mul_ps(vsc, _mm512_set1_ps(u[m])), acc[m]);
  }
}
#define ISSUE(BT, AT, CT, slot, bb, gg) { _tile_loadd(BT, Bb + ((bb)*G+(gg))*1024, 64); _tile_loadd(AT, A + t0*G*64 + (gg)*64, G*64); \
  _tile_zero(CT); _tile_dpbssd(CT, AT, BT); _tile_stored(CT, ct[slot], 64); }
// steps j = b*G + g over the token tile's blocks; batches of 4 steps; epilogue of batch k-1 after issuing batch k
template<int EPI>
__attribute__((noinline)) void run() {
  for (int t0 = 0; t0 < T; t0 += 16) {
    __m512 acc[16];
    for (int m=0;m<16;++m) acc[m]=_mm512_setzero_ps();
    const int steps = NB*G;
    for (int k = 0; k <= steps/4; ++k) {
      if (k < steps/4) {
        const int j = 4*k, s = (k&1)*4;
        ISSUE(0,1,4,s+0,(j)/G,(j)%G) ISSUE(2,3,5,s+1,(j+1)/G,(j+1)%G) ISSUE(0,1,6,s+2,(j+2)/G,(j+2)%G) ISSUE(2,3,7,s+3,(j+3)/G,(j+3)%G)
      }
      if (EPI && k > 0) {
        const int j = 4*(k-1), s = ((k-1)&1)*4;
        for (int q = 0; q < 4; ++q) { const int jj = j+q, b = jj/G, g = jj%G; epi(acc, ct[s+q], SC + (b*G+g)*16, U + t0*G + g*16);
          if (g == G-1) { for (int m=0;m<16;++m) { _mm512_storeu_ps(Y + ((t0+m)*NB + b)*16, acc[m]); acc[m]=_mm512_setzero_ps(); } } }
      }
    }
  }
}
template<int E> double timeit(){ run<E>(); auto a=std::chrono::steady_clock::now(); for(int i=0;i<5;++i) run<E>();
  auto b=std::chrono::steady_clock::now(); double s=std::chrono::duration<double>(b-a).count()/5; return s*1e9/((T/16)*NB*G); }
int main(){
  if (syscall(SYS_arch_prctl, 0x1023, 18)) { printf("no amx\n"); return 1; }
  for (long i=0;i<(long)sizeof(A);++i) A[i]=(int8_t)((i*2654435761u)>>13);
  for (long i=0;i<(long)sizeof(Bb);++i) Bb[i]=(int8_t)(((i*2246822519u)>>11)%31)-15;
  for (int i=0;i<T*G;++i) U[i]=1.0f/(1+i%7);
  for (int i=0;i<NB*G*16;++i) SC[i]=0.01f;
  Cfg cfg; _tile_loadconfig(&cfg);
  printf("batch4: tiles only %.1f | with epilogue %.1f ns/step\n", timeit<0>(), timeit<1>());
  _tile_release();
}
